"""Every arithmetic on weights, in numpy, before TensorFlow sees them (issue 11).

Why: TensorFlow's graph optimiser (grappler) folds batch norm into the convolutions and the
converter casts to float16 with kernels that round differently on different CPUs (an Intel
Xeon and an AMD EPYC disagreed on 41 of 1,166,176 float16 weights, by one ulp). numpy's
elementwise float64 arithmetic, `sqrt` and casts are IEEE-exact (correctly rounded) on every
x86-64 CPU, so doing the fold and the rounding here makes the weights, and so the exported
bytes, the same everywhere. TensorFlow then only moves these values, it never computes them.

Quantisation, and why each is deterministic:

* float32: stored as is;
* float16: rounded here to float16 and back to float32, so the converter's own float16 cast
  (numpy `astype`, round to nearest even) meets values it can represent exactly;
* uint8: the kernels of ordinary convolutions (the bulk of the bytes) are stored uint8, the
  rest float16 (rounded as above). Folded depthwise kernels and biases span ranges that one
  per-tensor affine uint8 grid cannot hold: storing them uint8 too moved the default layers'
  outputs by 0.6 to 1.0 (relative L2), useless for dreaming. The tensorflowjs quantiser
  (`tensorflowjs.quantization.quantize_weights`) is numpy only: float64 min/max, a float64
  scale "nudged" so that 0 is exact, then clip, subtract, divide and `np.round` elementwise,
  each correctly rounded, so it is deterministic too. Rounding before it would not help (a
  second affine quantisation of dequantised values need not land on the same grid), so the
  export passes these kernels as folded and `stored_values` predicts what tfjs will decode:
  `q * scale + min` in float64, stored as float32, as tfjs-core's `decodeWeights` does in
  JavaScript.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

QUANTIZATIONS = ("float16", "float32", "uint8")

Arrays = dict[str, list[np.ndarray]]


def fold_batch_norm_wide(
    kernel: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray, mean: np.ndarray,
    variance: np.ndarray, epsilon: float, depthwise: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A convolution followed by inference-mode batch norm, as one biased convolution, float64.

    BN(conv(x, w)) = gamma * (conv(x, w) - mean) / sqrt(var + eps) + beta
                   = conv(x, w * s) + (beta - mean * s),  s = gamma / sqrt(var + eps),
    with `s` applied per output channel: the last kernel axis of a Conv2D kernel
    (kh, kw, in, out), the input-channel axis of a DepthwiseConv2D kernel (kh, kw, C, 1)
    whose multiplier is 1. `gamma` None is a batch norm without scale (Keras `scale=False`,
    as in InceptionV3): s = 1 / sqrt(var + eps). Kept in float64 so that a further exact
    step (`fold_input_range`) can follow before the one rounding to float32.
    """
    numerator = 1.0 if gamma is None else gamma.astype(np.float64)
    scale = numerator / np.sqrt(variance.astype(np.float64) + epsilon)
    wide = kernel.astype(np.float64)
    if depthwise:
        if wide.shape[-1] != 1:
            raise ValueError(f"depthwise kernel {wide.shape}: only multiplier 1 is folded")
        wide = wide * scale[None, None, :, None]
    else:
        wide = wide * scale
    bias = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return wide, bias


def fold_batch_norm(
    kernel: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray, mean: np.ndarray,
    variance: np.ndarray, epsilon: float, depthwise: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """`fold_batch_norm_wide`, rounded once to float32: the folded kernel and bias."""
    wide, bias = fold_batch_norm_wide(kernel, gamma, beta, mean, variance, epsilon, depthwise)
    return wide.astype(np.float32), bias.astype(np.float32)


def fold_input_range(
    kernel: np.ndarray, bias: np.ndarray, given: tuple[float, float],
    native: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Make a first convolution take pixels in `given` instead of its `native` range, float64.

    Why: a network trained on one pixel range (InceptionV3 from nsfwjs: [0, 1]) is offered
    with the range every model of the page takes ([-1, 1]), without an extra op in the graph.
    native = a * given + b per pixel, a = (nh - nl) / (gh - gl), b = nl - a * gl, so
    conv(native, w) + c = conv(given, a * w) + (c + b * sum(w)), the sum over the window and
    the input channels. Exact only for a convolution without zero padding ('valid'): a
    padded zero would stand for a pixel of value -b / a instead.
    """
    (given_low, given_high), (native_low, native_high) = given, native
    a = (native_high - native_low) / (given_high - given_low)
    b = native_low - a * given_low
    wide = np.asarray(kernel, np.float64)
    return a * wide, np.asarray(bias, np.float64) + b * wide.sum(axis=(0, 1, 2))


def _quantize_uint8(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """tensorflowjs's own uint8 quantiser (numpy only), so the prediction cannot drift from it."""
    from tensorflowjs import quantization

    quantized, meta = quantization.quantize_weights(array, np.uint8)
    return quantized, float(meta["scale"]), float(meta["min"])


# tensorflowjs weight-name patterns (fnmatch) of ordinary convolution kernels in the converted
# graph; `storage` picks the same arrays by shape, and the export's bit-for-bit check of every
# stored weight (tfjs_export.check_stored_weights) fails if the two ever disagree.
UINT8_PATTERNS = ("*/convolution/ReadVariableOp",)


def storage(array: np.ndarray, quantize: str) -> str:
    """How one array is stored under `--quantize`: float32, float16 or uint8 (module doc)."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown quantisation {quantize!r}; choose from {QUANTIZATIONS}")
    if quantize == "uint8":
        ordinary_kernel = array.ndim == 4 and array.shape[-1] > 1  # depthwise: (kh, kw, C, 1)
        return "uint8" if ordinary_kernel else "float16"
    return quantize


def quantization_map(quantize: str) -> dict | None:
    """The tensorflowjs `quantization_dtype_map` that stores each array as `storage` says."""
    if quantize == "float32":
        return None
    if quantize == "uint8":
        return {"uint8": list(UINT8_PATTERNS), "float16": True}
    return {quantize: True}


def stored_values(array: np.ndarray, quantize: str) -> np.ndarray:
    """The float32 values the browser will hold for `array` under `--quantize`."""
    array = np.asarray(array, dtype=np.float32)
    kind = storage(array, quantize)
    if kind == "float16":
        return array.astype(np.float16).astype(np.float32)
    if kind == "uint8":
        quantized, scale, minimum = _quantize_uint8(array)
        return (quantized.astype(np.float64) * scale + minimum).astype(np.float32)
    return array


def for_export(folded: Arrays, quantize: str) -> Arrays:
    """The arrays to hand to TensorFlow: float16 ones pre-rounded, uint8 ones as folded."""
    return {k: [stored_values(a, quantize) if storage(a, quantize) == "float16" else a
                for a in v] for k, v in folded.items()}


def rounded(folded: Arrays, quantize: str) -> Arrays:
    """The arrays exactly as the browser will hold them: the model TF.js is checked against."""
    return {k: [stored_values(a, quantize) for a in v] for k, v in folded.items()}


# --- reading an export back -----------------------------------------------------------------

_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8,
           "uint16": np.uint16, "bool": np.bool_}


def decode_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """Every tensor of a TF.js model, decoded as tfjs-core's `decodeWeights` decodes it.

    The shards of all groups are one byte stream in `weightsManifest` order; each weight takes
    prod(shape) items of its stored dtype (the quantised one, if any). float16 is widened to
    float32 (exact), uint8/uint16 become `q * scale + min` in float64, stored as float32.
    """
    manifest = json.loads((Path(model_dir) / "model.json").read_text())["weightsManifest"]
    stream = b"".join(
        (Path(model_dir) / path).read_bytes() for group in manifest for path in group["paths"]
    )
    decoded: dict[str, np.ndarray] = {}
    offset = 0
    for spec in (w for group in manifest for w in group["weights"]):
        shape = tuple(spec["shape"])
        quantization = spec.get("quantization")
        stored = _DTYPES[quantization["dtype"] if quantization else spec["dtype"]]
        count = int(np.prod(shape, dtype=np.int64))
        raw = np.frombuffer(stream, dtype=stored, count=count, offset=offset)
        offset += raw.nbytes
        if quantization and quantization["dtype"] in ("uint8", "uint16"):
            value = raw.astype(np.float64) * quantization["scale"] + quantization["min"]
            raw = value.astype(_DTYPES[spec["dtype"]])
        elif quantization:  # float16
            raw = raw.astype(np.float32)
        decoded[spec["name"]] = raw.reshape(shape)
    if offset != len(stream):
        raise ValueError(f"{model_dir}: shards hold {len(stream)} bytes, manifest {offset}")
    return decoded


def shards_sha256(model_dir: Path) -> str:
    """sha256 of the weight bytes, shards concatenated in manifest order: one id per export."""
    manifest = json.loads((Path(model_dir) / "model.json").read_text())["weightsManifest"]
    digest = hashlib.sha256()
    for group in manifest:
        for path in group["paths"]:
            digest.update((Path(model_dir) / path).read_bytes())
    return digest.hexdigest()
