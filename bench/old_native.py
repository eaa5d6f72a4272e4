"""The native step as it was before issue 11: the baseline of the speed-up claim.

Reproduced from the engine at commit 0bf0f6b (native/tf_backend.py, dreamengine/render.py),
kept here and nowhere else, so the benchmark can time the old and the new step side by side
in one process on one machine (timings from different days on a shared CPU mean little).
What made the old step slow, and is kept exactly:

* the network was ONE `tf.function` returning every manifest output, the deepest
  (block_15) included, whatever the objective asked for;
* the gradient was taken eagerly, with a `tf.GradientTape` around a call of that function:
  TensorFlow then builds and runs the function's forward and backward graphs separately and
  keeps every intermediate activation alive between them;
* each tile's loss was a Python closure over the activations, and each tile's loss value
  was read back to a Python float before the next tile.

One thing differs on purpose: the weights. The old engine rebuilt Keras Applications' network
with batch norm unfolded; this baseline runs on today's folded, float16-rounded network
(`native.tf_backend.load_model`), so the ratio measures the engine change alone.
"""

import tensorflow as tf

from native.tf_backend import TfBackend


class OldTfBackend(TfBackend):
    """TfBackend with the pre-issue-11 network call and eager gradient (0bf0f6b)."""

    def __init__(self, model: tf.keras.Model, manifest: dict) -> None:
        super().__init__(model, manifest)
        self.full_network = tf.function(lambda x: model(x, training=False), input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32)])
        self.index = {out["layer"]: out["index"] for out in manifest["outputs"]}

    def activations(self, x: tf.Tensor, layers: list) -> list:
        """Every output computed, the asked-for ones picked (as at 0bf0f6b)."""
        outputs = self.full_network(x)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [outputs[self.index[name]] for name in layers]

    def closure_value_and_grad(self, fn: object, x: tf.Tensor) -> tuple:
        """The old `value_and_grad(fn, x)`: an eager tape around a Python closure."""
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return value, tape.gradient(value, x)


def old_tiled_gradient(ops: OldTfBackend, image: tf.Tensor, objective: object,
                       transforms: object) -> tuple:
    """Loss (a float) and gradient, one tile at a time: render.tiled_gradient at 0bf0f6b."""
    height, width = ops.size(image)
    layers = objective.layers
    rows = transforms.tiles(height)
    cols = transforms.tiles(width)
    if len(rows) == len(cols) == 1:
        value, grad = ops.closure_value_and_grad(
            lambda x: objective.loss(ops, ops.activations(x, layers), 1.0), image)
        return float(value), grad
    totals = []
    row_grads = []
    m = transforms.margin
    for y0, y1 in rows:
        col_grads = []
        for x0, x1 in cols:
            ey0, ey1 = max(0, y0 - m), min(height, y1 + m)
            ex0, ex1 = max(0, x0 - m), min(width, x1 + m)
            share = (ey1 - ey0) * (ex1 - ex0) / (height * width)

            def tile_loss(x: tf.Tensor, share: float = share) -> tf.Tensor:
                return objective.loss(ops, ops.activations(x, layers), share)

            value, grad = ops.closure_value_and_grad(tile_loss,
                                                     ops.crop(image, ey0, ey1, ex0, ex1))
            core = (y1 - y0) * (x1 - x0) / ((ey1 - ey0) * (ex1 - ex0))
            totals.append(float(value) * core)
            col_grads.append(ops.crop(grad, y0 - ey0, y1 - ey0, x0 - ex0, x1 - ex0))
        row_grads.append(col_grads[0] if len(col_grads) == 1 else ops.concat(col_grads, 2))
    grad = row_grads[0] if len(row_grads) == 1 else ops.concat(row_grads, 1)
    return sum(totals), grad


def old_gradient_step(ops: OldTfBackend, image: tf.Tensor, objective: object,
                      step_size: float, transforms: object, shift: tuple,
                      value_range: tuple = (-1.0, 1.0)) -> tuple:
    """One step as at 0bf0f6b: roll, tiled gradient, roll back, normalise, update, clip.

    Returns (new image, normalised gradient, loss as a float), like the old engine.
    """
    dy, dx = shift
    loss, grad = old_tiled_gradient(ops, ops.roll(image, dy, dx), objective, transforms)
    grad = ops.normalize(ops.roll(grad, -dy, -dx))
    updated = ops.clip(ops.add(image, ops.scale(grad, step_size)), *value_range)
    return updated, grad, loss
