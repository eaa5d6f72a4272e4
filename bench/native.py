"""Native TensorFlow figures, one thread setting per process: `python -m bench.native ...`.

TensorFlow fixes its thread pools when its runtime starts, so "1 thread" and "2 threads" can
only be compared from separate processes: `bench/__main__.py` starts this module once per
setting and reads the JSON it writes. Every timing comes with a correctness figure from the
same run: the cosine of the step's gradient to a reference gradient computed the plainest
way (an eager tape through the whole Keras model, no compiled graph) on the same image and
the same roll. With `--save-grads` the step's own gradients are written as .npy, for the
browser rows to be compared with. `--facts` adds the engine figures docs/engine.md quotes (tile
seams, the chelsea dream, drift between two nearly equal runs).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np

from scripts import REPO

OPTIONS = {"seed": 0, "jitter": 32, "tile_size": 512}


def shifts(count: int) -> list:
    """The rolls of a timing run; the first one is the one checked for correctness."""
    return [(5 + 7 * i, 2 + 3 * i) for i in range(count)]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two gradients (float64); NaN when either is all zeros or not finite."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if not np.isfinite(norms) or norms == 0:
        return float("nan")
    return float(a @ b / norms)


def configure_threads(threads: int) -> object:
    """Import TensorFlow with both thread pools set to `threads` (before its runtime starts)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def load_image(path: Path) -> object:
    """A PNG as the engine's (1, h, w, 3) float32 tensor in [-1, 1]."""
    from PIL import Image

    from native import tf_backend

    return tf_backend.to_tensor(np.asarray(Image.open(path).convert("RGB")))


class Native:
    """The model, the engine's backend, the pre-issue-11 backend and a plain reference."""

    def __init__(self) -> None:
        import tensorflow as tf

        from bench.old_native import OldTfBackend
        from dreamengine import presets
        from dreamengine.objective import Objective
        from dreamengine.transforms import Transforms
        from native import tf_backend

        model, manifest = tf_backend.load_model()
        self.tf = tf
        self.model = model
        self.index = {out["layer"]: out["index"] for out in manifest["outputs"]}
        self.new = tf_backend.TfBackend(model, manifest)
        self.old = OldTfBackend(model, manifest)
        self.objective = Objective(presets.DEFAULT["weights"])
        self.step_size = presets.DEFAULT["step_size"]
        self.transforms = Transforms(OPTIONS["jitter"], OPTIONS["tile_size"])

    def new_step(self, image: object, shift: tuple) -> tuple:
        """The engine's own step over TfBackend, as `python -m native.dream` runs it."""
        from dreamengine.render import gradient_step

        updated, grad, _ = gradient_step(self.new, image, self.objective, self.step_size,
                                         self.transforms, shift, (-1.0, 1.0))
        return np.asarray(updated), np.asarray(grad)

    def old_step(self, image: object, shift: tuple) -> tuple:
        """The pre-issue-11 step (bench/old_native.py)."""
        from bench.old_native import old_gradient_step

        updated, grad, _ = old_gradient_step(self.old, image, self.objective, self.step_size,
                                             self.transforms, shift)
        return np.asarray(updated), np.asarray(grad)

    def reference_gradient(self, image: object, shift: tuple) -> np.ndarray:
        """The normalised gradient of the same step, computed eagerly and uncompiled.

        Same tiles as the engine (so tiling is not counted as an error), each tile's
        gradient from an eager tape through the whole Keras model.
        """
        tf = self.tf
        dy, dx = shift
        rolled = tf.roll(image, shift=(dy, dx), axis=(1, 2))
        height, width = int(image.shape[1]), int(image.shape[2])
        m = self.transforms.margin
        rows = []
        for y0, y1 in self.transforms.tiles(height):
            cols = []
            for x0, x1 in self.transforms.tiles(width):
                ey0, ey1 = max(0, y0 - m), min(height, y1 + m)
                ex0, ex1 = max(0, x0 - m), min(width, x1 + m)
                tile = rolled[:, ey0:ey1, ex0:ex1, :]
                with tf.GradientTape() as tape:
                    tape.watch(tile)
                    outputs = self.model(tile, training=False)
                    loss = tf.add_n([tf.reduce_mean(outputs[self.index[name]]) * weight
                                     for name, weight in self.objective.weights.items()])
                grad = tape.gradient(loss, tile)
                cols.append(grad[:, y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0, :])
            rows.append(tf.concat(cols, 2))
        grad = tf.roll(tf.concat(rows, 1), shift=(-dy, -dx), axis=(1, 2))
        return np.asarray(grad / (tf.math.reduce_std(grad) + 1e-8))


def time_steps(step: object, image: object, repeats: int) -> dict:
    """First step (tracing, allocation) and the median of `repeats` more, in ms, plus the
    first step's gradient."""
    times = []
    first_grad = None
    for i, shift in enumerate(shifts(repeats + 1)):
        start = time.perf_counter()
        _, grad = step(image, shift)
        times.append((time.perf_counter() - start) * 1000)
        if i == 0:
            first_grad = grad
    return {"first_ms": times[0], "steady_ms": statistics.median(times[1:]),
            "times_ms": times[1:]}, first_grad


def measure_steps(native: Native, images: dict, sizes: list, repeats: int,
                  save_grads: Path | None) -> dict:
    """The engine's step at each size, with its cosine to the reference gradient."""
    result = {}
    for size in sizes:
        image = load_image(images / f"coffee-{size}.png")
        figures, grad = time_steps(native.new_step, image, repeats)
        figures["cosine_to_reference"] = cosine(grad, native.reference_gradient(
            image, shifts(1)[0]))
        if save_grads is not None:
            save_grads.mkdir(parents=True, exist_ok=True)
            np.save(save_grads / f"coffee-{size}.npy", grad.astype(np.float32))
        result[str(size)] = figures
        print(f"  native new step {size} px: {figures['steady_ms']:.0f} ms "
              f"(cosine {figures['cosine_to_reference']:.6f})", file=sys.stderr, flush=True)
    return result


def measure_old(native: Native, images: Path, size: int, repeats: int) -> dict:
    """Old and new step at one size, interleaved step by step so that load from other work
    on the machine falls on both alike; each with its cosine to the reference."""
    image = load_image(images / f"coffee-{size}.png")
    reference = native.reference_gradient(image, shifts(1)[0])
    figures = {}
    for name, step in (("old", native.old_step), ("new", native.new_step)):
        start = time.perf_counter()
        _, grad = step(image, shifts(1)[0])  # first call: tracing, not timed below
        figures[name] = {"first_ms": (time.perf_counter() - start) * 1000,
                         "cosine_to_reference": cosine(grad, reference), "times_ms": []}
    for shift in shifts(repeats + 1)[1:]:
        for name, step in (("old", native.old_step), ("new", native.new_step)):
            start = time.perf_counter()
            step(image, shift)
            figures[name]["times_ms"].append((time.perf_counter() - start) * 1000)
    for f in figures.values():
        f["steady_ms"] = statistics.median(f["times_ms"])
    figures["speedup"] = figures["old"]["steady_ms"] / figures["new"]["steady_ms"]
    figures["size"] = size
    print(f"  old step {size} px: {figures['old']['steady_ms']:.0f} ms, new "
          f"{figures['new']['steady_ms']:.0f} ms: {figures['speedup']:.2f}x",
          file=sys.stderr, flush=True)
    return figures


def measure_facts(native: Native) -> dict:
    """Engine figures docs/engine.md quotes, measured natively with the committed model."""
    from PIL import Image

    from dreamengine import presets
    from dreamengine.plan import plan
    from dreamengine.render import dream, gradient_step, tiled_gradient
    from dreamengine.transforms import Transforms
    from native import tf_backend

    facts = {}
    # Tile seams: a 384 px image in 192 px tiles against the untiled gradient.
    coffee = Image.open(REPO / "web/samples/coffee.jpg").convert("RGB")
    image = tf_backend.to_tensor(np.asarray(coffee.resize((384, 384), Image.BILINEAR)))
    _, whole = tiled_gradient(native.new, image, native.objective, Transforms(0, 512))
    facts["tiles"] = {"image": 384, "tile": 192, "cosine_by_margin": {
        str(margin): cosine(np.asarray(tiled_gradient(
            native.new, image, native.objective, Transforms(0, 192, margin))[1]), whole)
        for margin in (0, 32, 64, 96)}}
    # The default dream of the chelsea sample, as `python -m native.dream` makes it.
    photo = Image.open(REPO / "web/samples/chelsea.jpg").convert("RGB")
    pixels = np.asarray(photo)
    objective, schedule, transforms, seed = plan(presets.DEFAULT)
    losses = []
    start = time.perf_counter()
    result = tf_backend.finish(dream(
        native.new, tf_backend.to_tensor(pixels), objective, schedule, transforms, seed,
        on_step=lambda info: losses.append((info.octave, info.loss))))
    seconds = time.perf_counter() - start
    change = np.abs(tf_backend.to_pixels(result).astype(np.float64) - pixels).mean()
    octaves = sorted({o for o, _ in losses})
    facts["chelsea_dream"] = {
        "size": list(photo.size), "seconds": seconds, "mean_abs_change_255": float(change),
        "loss_by_octave": [[[loss for o, loss in losses if o == octave][i] for i in (0, -1)]
                           for octave in octaves]}
    # Drift: the same six steps from the photo and from the photo plus 1e-5 noise.
    base = tf_backend.to_tensor(pixels)
    noisy = base + native.tf.random.stateless_normal(base.shape, (1, 2), stddev=1e-5)
    cosines = []
    a, b = base, noisy
    for shift in shifts(6):
        a, ga, _ = gradient_step(native.new, a, native.objective, native.step_size,
                                 native.transforms, shift, (-1.0, 1.0))
        b, gb, _ = gradient_step(native.new, b, native.objective, native.step_size,
                                 native.transforms, shift, (-1.0, 1.0))
        cosines.append(cosine(np.asarray(ga), np.asarray(gb)))
    facts["drift"] = {"noise": 1e-5, "cosine_by_step": cosines}
    print(f"  facts: {json.dumps(facts)[:300]}", file=sys.stderr, flush=True)
    return facts


def main(argv: list[str] | None = None) -> int:
    """Measure with the given thread count and write JSON to --out."""
    parser = argparse.ArgumentParser(prog="python -m bench.native", description=__doc__)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--images", type=Path, required=True,
                        help="folder with coffee-<size>.png (written by bench/__main__.py)")
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--old", type=int, default=0, help="also time the old step at this size")
    parser.add_argument("--save-grads", type=Path, default=None)
    parser.add_argument("--facts", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    tf = configure_threads(args.threads)
    native = Native()
    result = {"threads": args.threads,
              "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
              "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
              "tensorflow": tf.__version__,
              "steps": measure_steps(native, args.images,
                                     [int(s) for s in args.sizes.split(",") if s],
                                     args.repeats, args.save_grads)}
    if args.old:
        result["old_vs_new"] = measure_old(native, args.images, args.old, args.repeats)
    if args.facts:
        result["facts"] = measure_facts(native)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
