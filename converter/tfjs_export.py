"""Keras multi-output model -> TF.js graph model, checked weight by weight, written atomically.

A graph model, not a layers model: tfjs 4.22 cannot load layers models converted from
Keras 3, and the graph converter fuses each convolution with its bias and ReLU6, which made
gradient steps 2-4x faster in the browser. The model handed over has no batch norm left
(`converter/folding.py` folded it in numpy), so the converter only moves weights;
`check_stored_weights` proves it changed none.
"""

import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from converter import folding
from converter.errors import ExportError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import keras

QUANTIZATIONS = folding.QUANTIZATIONS
SHARD_BYTES = 4 * 1024 * 1024
# Seconds publish() waits between its two renames, so a test can kill it there (issue 12).
PUBLISH_PAUSE_ENV = "DREAMFRAME_PUBLISH_PAUSE"


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
            if not isinstance(outputs, (list, tuple)):  # a one-output Keras model
                outputs = [outputs]
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

    dtype_map = folding.quantization_map(quantize)
    tfjs_convert.convert_tf_saved_model(
        str(saved_model),
        str(out_dir),
        signature_def="serving_default",
        saved_model_tags="serve",
        quantization_dtype_map=dtype_map,
        weight_shard_size_bytes=SHARD_BYTES,
    )


def name_outputs(model_json: Path, names: list[str]) -> None:
    """Give every signature output of a converted model its `out_<index>_<layer>` key.

    Why: tensorflowjs keys an output by the SavedModel's key only when its dtype and shape
    single it out (`_find_signature_def_name`); outputs of equal shape, such as InceptionV3's
    mixed3 and mixed5 (768 channels each), are keyed by their tensor name (`Identity_1:0`)
    instead. The serving function returns a dict, flattened in sorted key order, and the
    converter names the graph's outputs `Identity`, `Identity_1`, ... in that order, so the
    k-th sorted key belongs to `Identity_k`. The keys tensorflowjs did keep are checked
    against that rule, and the export's TF.js-against-Keras check would catch a swap (the
    values of two layers differ by far more than its tolerance).
    """
    data = json.loads(model_json.read_text())
    outputs = data["signature"]["outputs"]
    keys = sorted(output_key(i, n) for i, n in enumerate(names))

    def node_index(entry: dict) -> int:
        node = entry["name"].split(":")[0]
        suffix = node.removeprefix("Identity").removeprefix("_")
        if not node.startswith("Identity") or not (suffix == "" or suffix.isdigit()):
            raise ExportError(f"converted model has an unexpected output node {node}")
        return int(suffix or 0)

    by_index = {node_index(entry): entry for entry in outputs.values()}
    if sorted(by_index) != list(range(len(keys))):
        raise ExportError(f"converted model has {len(outputs)} outputs, expected {len(keys)}")
    for key, entry in outputs.items():
        if key.startswith("out_") and keys[node_index(entry)] != key:
            raise ExportError(f"converted model's output {key} is not node {entry['name']}")
    data["signature"]["outputs"] = {keys[i]: by_index[i] for i in sorted(by_index)}
    model_json.write_text(json.dumps(data))


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
    """Swap `ready` in for `target` with two renames; `recover` mends a crash between them.

    With DREAMFRAME_PUBLISH_PAUSE=SECONDS it says so on stderr and waits between the renames:
    the one moment when `target` does not exist, which the kill test needs to hit.
    """
    backup = target.parent / f".{target.name}.old"
    if target.exists():
        target.rename(backup)
    pause = float(os.environ.get(PUBLISH_PAUSE_ENV) or 0)
    if pause:
        print(f"publish: paused between renames for {pause:g} s", file=sys.stderr, flush=True)
        time.sleep(pause)
    ready.rename(target)
    if backup.exists():
        shutil.rmtree(backup)


def canonicalise(model_json: Path) -> None:
    """Rewrite model.json in one canonical form, the same whichever graph passes ran.

    Keys sorted (the converter's key order varies run to run), and every node's private
    attributes (`_`-prefixed: TensorFlow's own, such as the `_input_shapes` that oneDNN's
    passes add, issue 17) dropped: tfjs reads none of them (its executor only looks up named
    op attributes), so they would only make the file depend on the exporting CPU.
    """
    data = json.loads(model_json.read_text())
    graphs = [data["modelTopology"]] + list(data["modelTopology"].get("library", {})
                                             .get("function", []))
    for graph in graphs:
        for node in graph.get("node", []) + graph.get("nodeDef", []):
            attributes = node.get("attr", {})
            for key in [k for k in attributes if k.startswith("_")]:
                del attributes[key]
    model_json.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")))


def _layer_of(component: str, layers: list[str]) -> str | None:
    """The Keras layer a graph name component belongs to: `block_3_expand_1` -> `block_3_expand`.

    Keras suffixes scopes with `_<n>` when it traces a layer, so the longest layer name that
    is the component or a `_`-prefix of it wins (`Conv_1_1` is `Conv_1`, not `Conv1`).
    """
    matches = [name for name in layers if component == name or component.startswith(name + "_")]
    return max(matches, key=len) if matches else None


def check_stored_weights(model_dir: Path, model: "keras.Model",
                         expected: dict[str, list[np.ndarray]]) -> None:
    """Refuse an export whose weights, as tfjs decodes them, are not `expected` bit for bit.

    Every float tensor in the shards is matched to the layer whose scope holds it (by name)
    and to that layer's kernel or bias (by shape), then compared as raw float32 bits. The
    converter may fuse ops and reshape a bias, but a single value moved by one ulp, a weight
    left over or one missing fails. This is the CPU-independent property of an export.
    """
    layers = [layer.name for layer in model.layers if layer.weights]
    decoded = folding.decode_weights(model_dir)
    seen: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    for tensor_name, value in decoded.items():
        if value.dtype != np.float32:
            continue  # int32 shape and padding constants, not weights
        owner = next((layer for part in tensor_name.split("/")
                      if (layer := _layer_of(part, layers))), None)
        if owner is None:
            raise ExportError(f"exported weight {tensor_name} belongs to no layer")
        seen[owner].append(value)
    for name in layers:
        want = [np.asarray(a, dtype=np.float32) for a in expected[name]]
        got = sorted(seen[name], key=lambda a: -a.ndim)  # kernel (4-D) first, then bias
        if [a.size for a in got] != [a.size for a in want]:
            raise ExportError(f"exported weights of {name}: sizes {[a.size for a in got]}, "
                              f"expected {[a.size for a in want]}")
        for stored, numpy_value in zip(got, want, strict=True):
            stored = np.ascontiguousarray(stored).reshape(numpy_value.shape)
            numpy_value = np.ascontiguousarray(numpy_value)
            if not np.array_equal(stored.view(np.uint32), numpy_value.view(np.uint32)):
                differ = int(np.sum(stored.view(np.uint32) != numpy_value.view(np.uint32)))
                raise ExportError(f"exported weights of {name} differ from numpy's in "
                                  f"{differ} of {numpy_value.size} values")
