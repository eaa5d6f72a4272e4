"""TensorFlow tensor operations for the dream engine (see `dreamengine/render.py`).

The reference the browser is checked against, and the engine of the command line. The model
is the multi-output Keras network the manifest names (MobileNetV2 by default, or InceptionV3:
`registry.rebuild` dispatches on `model.name`), rebuilt from the same ImageNet weights the
TF.js export is made from (`converter/`), with the manifest's layers as outputs.
"""

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from converter import registry
from dreamengine.ops import Ops
from dreamengine.presets import VALUE_RANGE
from scripts import REPO

MANIFEST = REPO / "models" / "mobilenet_v2" / "manifest.json"


def load_model(manifest_path: Path = MANIFEST) -> tuple:
    """The Keras model with one output per manifest layer, and the manifest.

    The network is the one the export was made from and checked against: the source weights
    the manifest names, batch norm folded and rounded to its storage format in numpy
    (`converter/folding.py`), so native TensorFlow holds exactly the weights the browser
    holds. When the export's model.json lies beside the manifest, its stored weights are
    compared bit for bit with these (a fraction of a second), so a stale or foreign export is
    refused instead of dreaming with a different network.
    """
    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    model_dir = manifest_path.parent
    has_export = (model_dir / manifest["model"]["file"]).is_file()
    return registry.rebuild(manifest, model_dir if has_export else None), manifest


class TfBackend(Ops):
    """TensorFlow: every method mirrors one in the TF.js backend.

    Speed comes from `value_and_grad`: the objective's forward and backward pass run as one
    compiled graph per objective, traced once for every tile size (the input's height and
    width are left dynamic), and holding only the layers that objective reads. The few
    image-sized operations around it (roll, normalise, update) run eagerly.
    """

    def __init__(self, model: tf.keras.Model, manifest: dict) -> None:
        self.model = model
        self.layers = [out["layer"] for out in manifest["outputs"]]
        self.networks = {}  # layer names -> a model computing just those, and nothing deeper
        self.compiled = {}  # objective key -> compiled value-and-gradient function

    def network(self, layers: list) -> tf.keras.Model:
        """A model with just `layers` as outputs: deeper layers are not computed at all."""
        key = tuple(layers)
        if key not in self.networks:
            self.networks[key] = tf.keras.Model(
                self.model.inputs, [self.model.get_layer(name).output for name in layers])
        return self.networks[key]

    def size(self, x: tf.Tensor) -> tuple:
        return int(x.shape[1]), int(x.shape[2])

    def resize(self, x: tf.Tensor, height: int, width: int) -> tf.Tensor:
        return tf.image.resize(x, (height, width), method="bilinear")

    def roll(self, x: tf.Tensor, dy: int, dx: int) -> tf.Tensor:
        return tf.roll(x, shift=(dy, dx), axis=(1, 2))

    def crop(self, x: tf.Tensor, y0: int, y1: int, x0: int, x1: int) -> tf.Tensor:
        return x[:, y0:y1, x0:x1, :]

    def concat(self, tensors: list, axis: int) -> tf.Tensor:
        return tf.concat(tensors, axis)

    def stack(self, scalars: list) -> tf.Tensor:
        return tf.stack(scalars)

    def add(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return a + b

    def sub(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return a - b

    def scale(self, x: tf.Tensor, factor: float) -> tf.Tensor:
        return x * factor

    def mul(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return a * b

    def div(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return a / b

    def offset(self, x: tf.Tensor, value: float) -> tf.Tensor:
        return x + value

    def mean(self, x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(x)

    def square(self, x: tf.Tensor) -> tf.Tensor:
        return tf.square(x)

    def channel(self, x: tf.Tensor, index: int) -> tf.Tensor:
        return x[..., index:index + 1]

    def normalize(self, x: tf.Tensor) -> tf.Tensor:
        return x / (tf.math.reduce_std(x) + 1e-8)

    def clip(self, x: tf.Tensor, low: float, high: float) -> tf.Tensor:
        return tf.clip_by_value(x, low, high)

    def max_abs(self, x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_max(tf.abs(x))

    def count_nonfinite(self, x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(x)), tf.float32))

    def activations(self, x: tf.Tensor, layers: list) -> list:
        outputs = self.network(layers)(x, training=False)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def value_and_grad(self, objective: object, x: tf.Tensor, scale: float) -> tuple:
        compiled = self.compiled.get(objective.key)
        if compiled is None:
            @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32),
                                          tf.TensorSpec([], tf.float32)])
            def compiled(image: tf.Tensor, share: tf.Tensor) -> tuple:
                with tf.GradientTape() as tape:
                    tape.watch(image)
                    value = objective(self, image, share)
                return value, tape.gradient(value, image)

            self.compiled[objective.key] = compiled
        return compiled(x, tf.constant(scale, tf.float32))

    def zoom(self, x: tf.Tensor, factor: float, degrees: float) -> tf.Tensor:
        """Centre-fixed zoom by `factor` and turn by `degrees` (counter-clockwise), same size,
        bilinear, edges clamped; sample points from `dreamengine.zoom.zoom_transform`."""
        from dreamengine.zoom import zoom_transform

        height, width = self.size(x)
        matrix = tf.constant([zoom_transform(height, width, factor, degrees)], tf.float32)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=x, transforms=matrix, output_shape=tf.constant([height, width], tf.int32),
            fill_value=tf.constant(0.0, tf.float32), interpolation="BILINEAR",
            fill_mode="NEAREST")

    def warp(self, x: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
        """x read at (col + u, row + v), bilinear, edges clamped: four gathers of the
        corners, computed exactly as the TF.js backend does (same index arithmetic)."""
        height, width = self.size(x)
        cols = tf.reshape(tf.range(width, dtype=tf.float32), (1, 1, width, 1))
        rows = tf.reshape(tf.range(height, dtype=tf.float32), (1, height, 1, 1))
        sx = tf.clip_by_value(cols + flow[..., 0:1], 0.0, width - 1.0)
        sy = tf.clip_by_value(rows + flow[..., 1:2], 0.0, height - 1.0)
        x0, y0 = tf.floor(sx), tf.floor(sy)
        fx, fy = sx - x0, sy - y0
        x1, y1 = tf.minimum(x0 + 1.0, width - 1.0), tf.minimum(y0 + 1.0, height - 1.0)
        flat = tf.reshape(x, (height * width, -1))

        def at(yy: tf.Tensor, xx: tf.Tensor) -> tf.Tensor:
            index = tf.cast(tf.reshape(yy * width + xx + 0.25, (-1,)), tf.int32)
            return tf.reshape(tf.gather(flat, index), tf.shape(x))

        top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx
        bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx
        return top + (bottom - top) * fy

    def box_blur(self, x: tf.Tensor, size: int) -> tf.Tensor:
        return tf.nn.avg_pool2d(x, size, 1, "SAME")

    def rows(self, x: tf.Tensor, step: int) -> tf.Tensor:
        """(1, h, w, c) -> (n, c): every `step`-th pixel down and across, row-major."""
        return tf.reshape(x[:, ::step, ::step, :], (-1, x.shape[-1]))

    def dots(self, x: tf.Tensor, table: tf.Tensor) -> tf.Tensor:
        """(n, c), (m, c) -> (n, m): the dot product of every row of `x` with every row of
        `table`."""
        return tf.matmul(x, table, transpose_b=True)

    def row_max(self, x: tf.Tensor) -> tf.Tensor:
        """(n, m) -> (n,): the largest value of each row (its gradient goes to that entry)."""
        return tf.reduce_max(x, axis=1)

    def tidy(self, fn: object) -> list:
        return fn()  # TensorFlow frees tensors when Python drops them

    async def read(self, t: tf.Tensor) -> list:
        return [float(v) for v in np.ravel(np.asarray(t))]

    def dispose(self, t: tf.Tensor) -> None:
        pass


def finish(coroutine: object) -> object:
    """The result of a coroutine that never has to wait, such as `render.dream` natively.

    The engine's loop is async for the page's sake (GPU reads there are promises); here every
    read is immediate, so the coroutine runs to its end in one `send`. Unlike `asyncio.run`,
    this also works where an event loop is already running (Playwright's, in the tests).
    """
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise RuntimeError("a native dream waited for something: this backend never should")


def to_tensor(pixels: np.ndarray) -> tf.Tensor:
    """uint8 RGB (h, w, 3) -> (1, h, w, 3) float32 in [-1, 1]."""
    low, high = VALUE_RANGE
    return tf.constant(pixels.astype(np.float32)[None] / (255.0 / (high - low)) + low)


def to_pixels(image: tf.Tensor) -> np.ndarray:
    """(1, h, w, 3) in [-1, 1] -> uint8 RGB (h, w, 3), rounded."""
    low, high = VALUE_RANGE
    scaled = (np.asarray(image)[0] - low) * (255.0 / (high - low))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)
