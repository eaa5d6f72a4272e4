"""Proof that the export is right: run it in TF.js and compare with Keras on real photos.

Two different questions, two checks:
* are the weights genuine ImageNet weights? The source's own classifier must name the cat
  and the espresso in scikit-image's sample photos (a random network gives ~0.001 per class);
* does the TF.js model compute what Keras computes? Every output on both photos, at their own
  sizes, run by tfjs under Node (cpu backend), must match within a tolerance that depends on
  the weight quantisation.
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

REPO = Path(__file__).resolve().parent.parent
CHECK_SCRIPT = Path(__file__).with_name("tfjs_check.mjs")
LABELS_MODULE = "@tensorflow-models/mobilenet/dist/imagenet_classes.js"

# Largest allowed ||tfjs - keras|| / ||keras|| per output. Measured (README, "Fidelity"):
# float32 ~1e-6 (summation order only); float16 weights <= 5e-3; uint8 weights 0.15-0.30,
# because per-tensor affine uint8 cannot hold the wide range of depthwise kernels once
# batch norm is folded in: uint8 is a size-over-quality choice, and the check says so.
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "uint8": 0.4}


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
    classifier: "keras.Model", pixels: np.ndarray, labels: list[str]
) -> list[tuple[str, float]]:
    """The classifier's five most likely classes for a photo resized to 224x224."""
    import tensorflow as tf

    batch = tf.image.resize(preprocess(pixels), (224, 224))
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


def compare(keras_model: "keras.Model", model_dir: Path, nodes: list[str]) -> float:
    """Largest relative error of any TF.js output against Keras, over both photos."""
    batches = [preprocess(p) for p in photos().values()]
    tfjs_outputs = run_tfjs(model_dir, nodes, batches)
    worst = 0.0
    for batch, outputs in zip(batches, tfjs_outputs, strict=True):
        expected = keras_model(batch, training=False)
        expected = expected if isinstance(expected, (list, tuple)) else [expected]
        for got, want in zip(outputs, expected, strict=True):
            worst = max(worst, relative_error(got, np.asarray(want)))
    return worst
