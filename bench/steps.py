"""Milliseconds per gradient step: native TensorFlow and tfjs backends, measured side by side.

Every figure is the median of several steps after a warm-up step, on the same model, the
same objective (the default layer weights) and the same image (the coffee photo resized to
a square of the given side), with the page's own step function (`engine.step`, Python over
tfjs) or the engine's `gradient_step` over TensorFlow.
"""

import json
import statistics
import time

import numpy as np

OPTIONS = {"seed": 0, "jitter": 32, "tile_size": 512}

BROWSER_STEPS = """async ([size, options, repeats]) => {
  const { tf, engine } = window.dreamframe;
  const img = new Image(); img.src = 'samples/coffee.jpg'; await img.decode();
  const image = tf.tidy(() => tf.image.resizeBilinear(
    tf.browser.fromPixels(img).toFloat().div(127.5).sub(1).expandDims(0), [size, size]));
  const times = [];
  for (let i = 0; i <= repeats; i++) {
    const start = performance.now();
    const [updated, gradient] = await engine.step(image, options, 7 * i, 3 * i);
    updated.dataSync();
    times.push(performance.now() - start);
    updated.dispose(); gradient.dispose();
  }
  image.dispose();
  return times.slice(1);  // the first step compiles kernels and allocates: a warm-up
}"""

# The same step written in plain JS against the same tfjs, for the Python-vs-JS ratio:
# roll, gradient of the weighted layer means, roll back, normalise, update, clip.
JS_STEPS = """async ([size, weights, stepSize, repeats]) => {
  const { tf, loaded } = window.dreamframe;
  const img = new Image(); img.src = 'samples/coffee.jpg'; await img.decode();
  const image = tf.tidy(() => tf.image.resizeBilinear(
    tf.browser.fromPixels(img).toFloat().div(127.5).sub(1).expandDims(0), [size, size]));
  const byLayer = new Map(loaded.manifest.outputs.map((o) => [o.layer, o.node]));
  const layers = Object.keys(weights);
  const nodes = layers.map((l) => byLayer.get(l));
  const roll = (x, dy, dx) => {
    const rollAxis = (t, shift, axis) => {
      const n = t.shape[axis]; shift = ((shift % n) + n) % n;
      if (shift === 0) return t;
      const begin = [0, 0, 0, 0]; begin[axis] = n - shift;
      const size = [-1, -1, -1, -1]; size[axis] = n - shift;
      const tail = tf.slice(t, begin, [-1, -1, -1, -1]);
      return tf.concat([tail, tf.slice(t, [0, 0, 0, 0], size)], axis);
    };
    return rollAxis(rollAxis(x, dy, 1), dx, 2);
  };
  const loss = (x) => {
    const acts = loaded.model.execute(x, nodes);
    const list = Array.isArray(acts) ? acts : [acts];
    return tf.addN(list.map((a, i) => tf.mul(tf.mean(a), weights[layers[i]])));
  };
  const valueAndGrad = tf.valueAndGrad(loss);
  const times = [];
  for (let i = 0; i <= repeats; i++) {
    const start = performance.now();
    const updated = tf.tidy(() => {
      const dy = 7 * i, dx = 3 * i;
      const { grad } = valueAndGrad(roll(image, dy, dx));
      const back = roll(grad, -dy, -dx);
      const { variance } = tf.moments(back);
      const normalized = tf.div(back, tf.add(tf.sqrt(variance), 1e-8));
      return tf.clipByValue(tf.add(image, tf.mul(normalized, stepSize)), -1, 1);
    });
    updated.dataSync();
    times.push(performance.now() - start);
    updated.dispose();
  }
  image.dispose();
  return times.slice(1);
}"""


def native_ms(sizes: list, repeats: int = 5, model: str = "mobilenet_v2") -> dict:
    """Median ms per step with native TensorFlow, per image side, with `model`'s export and
    its default layer weights (models/<model>/, dreamengine.presets.for_model)."""
    from dreamengine import presets
    from dreamengine.objective import Objective
    from dreamengine.render import gradient_step
    from dreamengine.transforms import Transforms
    from PIL import Image

    from native import tf_backend

    default = presets.for_model(model)["default"]
    network, manifest = tf_backend.load_model(tf_backend.REPO / "models" / model / "manifest.json")
    ops = tf_backend.TfBackend(network, manifest)
    objective = Objective(default["weights"])
    transforms = Transforms(OPTIONS["jitter"], OPTIONS["tile_size"])
    photo = Image.open("web/samples/coffee.jpg").convert("RGB")
    result = {}
    for size in sizes:
        image = tf_backend.to_tensor(np.asarray(photo.resize((size, size), Image.BILINEAR)))
        times = []
        for i in range(repeats + 1):
            start = time.perf_counter()
            updated, _, _ = gradient_step(ops, image, objective, default["step_size"],
                                          transforms, (7 * i, 3 * i), (-1.0, 1.0))
            np.asarray(updated)
            times.append((time.perf_counter() - start) * 1000)
        result[size] = statistics.median(times[1:])
    return result


def browser_ms(page: object, size: int, repeats: int = 5) -> float:
    """Median ms per step of the page's Python-driven step on the page's backend."""
    from dreamengine import presets

    options = json.dumps(dict(OPTIONS, weights=presets.DEFAULT["weights"]))
    return statistics.median(page.evaluate(BROWSER_STEPS, [size, options, repeats]))


def js_ms(page: object, size: int, repeats: int = 5) -> float:
    """Median ms per step of the same step written in plain JS (single tile)."""
    from dreamengine import presets

    d = presets.DEFAULT
    return statistics.median(page.evaluate(JS_STEPS, [size, d["weights"], d["step_size"],
                                                      repeats]))
