"""Keras multi-output model -> TF.js graph model, written atomically.

A graph model, not a layers model: tfjs 4.22 cannot load layers models converted from
Keras 3, and the graph converter folds batch norm into the convolutions, which made gradient
steps 2-4x faster in the browser.
"""

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import keras

from converter.errors import ExportError

QUANTIZATIONS = ("float16", "float32", "uint8")
SHARD_BYTES = 4 * 1024 * 1024


def save_saved_model(model: "keras.Model", names: list[str], directory: Path) -> None:
    """Export `model` as a SavedModel whose serving signature returns one tensor per layer.

    Output keys are `out_<index>_<layer>` so that their sorted order equals the layer order.
    """
    import tensorflow as tf

    keys = [output_key(i, n) for i, n in enumerate(names)]

    class DreamModel(tf.Module):
        def __init__(self, keras_model: "keras.Model") -> None:
            super().__init__()
            self.keras_model = keras_model

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, "image")])
        def serve(self, image: tf.Tensor) -> dict:
            outputs = self.keras_model(image, training=False)
            return dict(zip(keys, outputs, strict=True))

    module = DreamModel(model)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve})


def output_key(index: int, layer: str) -> str:
    """The serving-signature name of output `index`, which is layer `layer`."""
    return f"out_{index}_{layer}"


def convert(saved_model: Path, out_dir: Path, quantize: str) -> None:
    """Run the tensorflowjs graph converter with the chosen weight quantisation."""
    # tensorflowjs imports tensorflow_decision_forests, whose welcome banner imports IPython
    # (not installed) whenever stdout is not a terminal, e.g. under pytest: switch it off.
    os.environ["TFDF_DISABLE_WELCOME_MESSAGE"] = "1"
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_convert

    dtype_map = None if quantize == "float32" else {quantize: "*"}
    tfjs_convert.convert_tf_saved_model(
        str(saved_model),
        str(out_dir),
        signature_def="serving_default",
        saved_model_tags="serve",
        quantization_dtype_map=dtype_map,
        weight_shard_size_bytes=SHARD_BYTES,
    )


def output_nodes(model_json: Path, names: list[str]) -> list[str]:
    """The graph node that carries each layer's activation, as `GraphModel.execute` wants it."""
    signature = json.loads(model_json.read_text())["signature"]["outputs"]
    nodes = []
    for i, name in enumerate(names):
        entry = signature.get(output_key(i, name))
        if entry is None:
            raise ExportError(f"converted model lacks output {output_key(i, name)}")
        nodes.append(entry["name"].split(":")[0])
    return nodes


def check_writable(target: Path) -> None:
    """Fail early, before any slow work, if the output's parent folder cannot be written."""
    parent = target.resolve().parent
    if parent.exists() and not parent.is_dir():
        raise ExportError(f"output folder {target} is not writable: {parent} is a file")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{target.name}.tmp", dir=parent)
        os.rmdir(probe)
    except OSError as error:
        raise ExportError(f"output folder {parent} is not writable: {error.strerror}") from None


def recover(target: Path) -> None:
    """Mend what a killed run left: put back the previous export if it died between its two
    renames, and remove its scratch folders (one export at a time per output folder)."""
    backup = target.parent / f".{target.name}.old"
    if backup.exists() and not target.exists():
        backup.rename(target)
    elif backup.exists():
        shutil.rmtree(backup)
    for stale in target.parent.glob(f".{target.name}.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def staging(target: Path) -> "Iterator[Path]":
    """A scratch folder beside `target` that replaces it only if the block succeeds.

    Everything is written into `.<name>.tmp*` on the same filesystem and then renamed into
    place, so a failed, killed or interrupted run leaves the previous artifacts untouched
    (at worst a stale scratch folder, which the next run ignores and git ignores).
    """
    recover(target)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp", dir=target.parent))
    try:
        yield scratch
        publish(scratch / "out", target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def publish(ready: Path, target: Path) -> None:
    """Swap `ready` in for `target` with two renames; `recover` mends a crash between them."""
    backup = target.parent / f".{target.name}.old"
    if target.exists():
        target.rename(backup)
    ready.rename(target)
    if backup.exists():
        shutil.rmtree(backup)


def canonicalise(model_json: Path) -> None:
    """Rewrite model.json with sorted keys: the converter's key order varies run to run."""
    data = json.loads(model_json.read_text())
    model_json.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")))
