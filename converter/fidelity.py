"""Proof that the export is right: run it in TF.js and compare with Keras on real photos.

Three different questions, three checks:
* are the weights genuine ImageNet weights? The source's own classifier must name the cat
  and the espresso in scikit-image's sample photos (a random network gives ~0.001 per class);
* does the TF.js model compute what Keras computes? Every output on both photos, at their own
  sizes, run by tfjs under Node (wasm backend), against Keras holding the SAME stored (rounded)
  weights, so only float32 summation order differs, whatever the quantisation: TFJS_TOLERANCE;
* what does the quantisation itself cost? The rounded network against the float32 fold, both
  in Keras in float64, so the figure is a property of the weights alone, the same on every
  CPU to the three digits the manifest keeps: QUANTIZATION_TOLERANCE.
"""

import json
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from converter.errors import ExportError

if TYPE_CHECKING:
    import keras

from scripts import REPO

CHECK_SCRIPT = Path(__file__).with_name("tfjs_check.mjs")
LABELS_MODULE = "@tensorflow-models/mobilenet/dist/imagenet_classes.js"

# Largest allowed ||tfjs - keras|| / ||keras|| per output, same weights on both sides: both
# compute in float32 and differ only in summation order, measured 1e-6 to 1e-5 relative over
# 17 blocks. 1e-4 leaves room for other CPUs' kernels while a real fault stays far above it:
# a 1% change to one layer's kernel, a wrong padding or a mis-predicted quantisation gives
# 1e-3 or more (tests/test_converter.py checks a 1% change is caught).
TFJS_TOLERANCE = 1e-4

# Largest allowed ||rounded - float32 fold|| / ||float32 fold||: the cost of the storage
# format, not a fault, and it grows with depth (errors compound block after block). Largest
# measured over all 62 usable layers on the two photos: float16 3.2e-2 (out_relu; 8.8e-3 for
# the default layers, most of it from block 0's depthwise kernel, see docs/models.md "Fidelity");
# uint8 0.46 (out_relu; 0.05-0.13 for the defaults). The bounds let every layer export and
# still refuse a broken storage scheme: uint8 depthwise kernels moved the defaults by 0.6-1.0.
QUANTIZATION_TOLERANCE = {"float32": 0.0, "float16": 5e-2, "uint8": 0.5}


def photos() -> dict[str, np.ndarray]:
    """Real photos that ship inside scikit-image (no download): a cat and a cup of coffee."""
    from skimage import data

    return {"chelsea": data.chelsea(), "coffee": data.coffee()}


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float32 batch (1, H, W, 3) in [-1, 1], as MobileNetV2 expects."""
    return (pixels.astype(np.float32) / 127.5 - 1.0)[None]


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, from the tfjs-models mobilenet npm package (offline)."""
    script = f"console.log(JSON.stringify(require('{LABELS_MODULE}').IMAGENET_CLASSES))"
    result = subprocess.run(
        ["node", "--input-type=commonjs", "-e", script],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise ExportError("cannot read ImageNet class names: run `npm ci` first")
    classes = json.loads(result.stdout)
    return [classes[str(i)] for i in range(1000)]


def top5(
    classifier: "keras.Model", pixels: np.ndarray, labels: list[str], size: int = 224
) -> list[tuple[str, float]]:
    """The classifier's five most likely classes for a photo resized to size x size."""
    import tensorflow as tf

    batch = tf.image.resize(preprocess(pixels), (size, size))
    probabilities = np.asarray(classifier(batch, training=False))[0]
    best = np.argsort(probabilities)[::-1][:5]
    return [(labels[i], float(probabilities[i])) for i in best]


def run_tfjs(model_dir: Path, nodes: list[str], inputs: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Execute the TF.js graph model under Node and return every output for every input."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        job = {"nodes": nodes, "out_dir": str(work), "inputs": []}
        for i, batch in enumerate(inputs):
            batch.astype(np.float32).tofile(work / f"in{i}.bin")
            job["inputs"].append({"file": str(work / f"in{i}.bin"), "shape": list(batch.shape)})
        (work / "job.json").write_text(json.dumps(job))
        result = subprocess.run(
            ["node", str(CHECK_SCRIPT), str(model_dir), str(work / "job.json")],
            cwd=REPO, capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ExportError(f"TF.js could not run the exported model: {tail}")
        shapes = json.loads(result.stdout.strip().splitlines()[-1])["shapes"]
        return [
            [np.fromfile(work / f"{i}_{j}.bin", dtype=np.float32).reshape(shape)
             for j, shape in enumerate(per_input)]
            for i, per_input in enumerate(shapes)
        ]


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """||actual - expected|| / ||expected||: one number per activation map.

    An L2 ratio rather than a worst pixel: float16 rounding moves single activations of
    deep layers by a few percent while the map as a whole, which is what a dream follows,
    moves by a fraction of a percent.
    """
    if actual.shape != expected.shape:
        return float("inf")
    return float(np.linalg.norm(actual - expected) / max(float(np.linalg.norm(expected)), 1e-12))


def _outputs(model: "keras.Model", batch: np.ndarray) -> list[np.ndarray]:
    result = model(batch, training=False)
    return [np.asarray(t) for t in (result if isinstance(result, (list, tuple)) else [result])]


def tfjs_photo_outputs(model_dir: Path, nodes: list[str]) -> list[list[np.ndarray]]:
    """Every output of the TF.js model (wasm backend, Node) on each photo: the slow half of
    `compare`, kept apart so it can be reused."""
    return run_tfjs(model_dir, nodes, [preprocess(p) for p in photos().values()])


def compare(keras_model: "keras.Model", model_dir: Path, nodes: list[str],
            tfjs_outputs: list[list[np.ndarray]] | None = None) -> float:
    """Largest relative error of any TF.js output against Keras, over both photos."""
    batches = [preprocess(p) for p in photos().values()]
    if tfjs_outputs is None:
        tfjs_outputs = tfjs_photo_outputs(model_dir, nodes)
    worst = 0.0
    for batch, outputs in zip(batches, tfjs_outputs, strict=True):
        for got, want in zip(outputs, _outputs(keras_model, batch), strict=True):
            worst = max(worst, relative_error(got, want))
    return worst


def compare_models(model: "keras.Model", reference: "keras.Model") -> float:
    """Largest relative error of `model` against `reference`, any output, both photos.

    Models built in float64 get float64 photos, so the figure carries no float32 rounding.
    """
    worst = 0.0
    for pixels in photos().values():
        batch = preprocess(pixels).astype(reference.inputs[0].dtype)
        for got, want in zip(_outputs(model, batch), _outputs(reference, batch), strict=True):
            worst = max(worst, relative_error(got.astype(np.float64), want.astype(np.float64)))
    return worst


def significant(value: float, digits: int = 3) -> float:
    """`value` kept to `digits` significant digits, as the manifest stores measured figures."""
    return float(f"{value:.{digits - 1}e}")
