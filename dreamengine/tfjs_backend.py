"""TensorFlow.js tensor operations for the dream engine, through PyScript's FFI.

Mirrors `native/tf_backend.py` method for method. What needs care on this side:
* failures: under MicroPython a JS exception must never be thrown into Python (see
  web/js/guard.js), so tf and the model are used through `guard`: a failed call returns None,
  on which the Python code fails at once with a clean exception, and the caller asks the
  guard for the reason. Tensor methods are avoided for the same reason (`tf.dispose(t)`).
* memory: tfjs tensors are freed only when disposed. `tidy` opens an engine scope and closes
  it keeping only what the function returns, like `tf.tidy`, without handing tfjs a Python
  callable; `dispose` frees the tensors the loop keeps between steps.
* reads are asynchronous (`await t.data()`): a synchronous read stalls a GPU pipeline, and
  on WebGPU here it lost the device for good (every later read gave zeros).
* callables given to tfjs (`tf.valueAndGrad`) are wrapped with `create_proxy` and destroyed
  afterwards, or Pyodide frees them too early ("borrowed proxy was automatically destroyed").
* lists given to tfjs are converted with `to_js`: a Python list is not a JS Array to tfjs.
* tfjs has no `roll`: it is two slices and a concat per axis.
* resizing matches `tf.image.resize(method="bilinear")`: half-pixel centres, no corner
  alignment, no antialiasing.
"""

from pyscript.ffi import create_proxy, to_js

from dreamengine.ops import Ops
from dreamengine.zoom import zoom_transform


class TfjsBackend(Ops):
    """Runs the engine on a loaded TF.js graph model (see web/js/model.js)."""

    def __init__(self, tf: object, loaded: object, guard: object = None,
                 reader: object = None) -> None:
        self.guard = guard if guard is not None else (lambda target: target)
        # reader(t) -> Promise of t's values; the page's also rejects when the GPU is lost
        # (a read in flight on a lost WebGL context never settles otherwise).
        self.reader = reader
        self.tf = self.guard(tf)
        self.model = self.guard(loaded.model)
        self.nodes = {}
        outputs = loaded.manifest.outputs
        for i in range(outputs.length):
            self.nodes[outputs[i].layer] = outputs[i].node

    def size(self, x: object) -> tuple:
        return int(x.shape[1]), int(x.shape[2])

    def resize(self, x: object, height: int, width: int) -> object:
        return self.tf.image.resizeBilinear(x, to_js([height, width]), False, True)

    def _roll_axis(self, x: object, shift: int, axis: int) -> object:
        size = int(x.shape[axis])
        shift = shift % size
        if shift == 0:
            return x
        begin_a = [0, 0, 0, 0]
        begin_a[axis] = size - shift
        size_a = [-1, -1, -1, -1]
        size_b = [-1, -1, -1, -1]
        size_b[axis] = size - shift
        tail = self.tf.slice(x, to_js(begin_a), to_js(size_a))
        head = self.tf.slice(x, to_js([0, 0, 0, 0]), to_js(size_b))
        return self.tf.concat(to_js([tail, head]), axis)

    def roll(self, x: object, dy: int, dx: int) -> object:
        """Always a new tensor (a clone when nothing moves), so the caller may free `x`."""
        if dy % int(x.shape[1]) == 0:
            if dx % int(x.shape[2]) == 0:
                return self.tf.clone(x)
            return self._roll_axis(x, dx, 2)
        rows = self.tidy(lambda: [self._roll_axis(x, dy, 1)])[0]  # free its slices now
        try:
            return self._roll_axis(rows, dx, 2) if dx % int(x.shape[2]) else self.scale(rows, 1.0)
        finally:
            self.dispose(rows)

    def crop(self, x: object, y0: int, y1: int, x0: int, x1: int) -> object:
        return self.tf.slice(x, to_js([0, y0, x0, 0]), to_js([-1, y1 - y0, x1 - x0, -1]))

    def concat(self, tensors: list, axis: int) -> object:
        return self.tf.concat(to_js(tensors), axis)

    def stack(self, scalars: list) -> object:
        return self.tf.stack(to_js(scalars))

    def add(self, a: object, b: object) -> object:
        return self.tf.add(a, b)

    def sub(self, a: object, b: object) -> object:
        return self.tf.sub(a, b)

    def scale(self, x: object, factor: float) -> object:
        return self.tf.mul(x, self.tf.scalar(factor))

    def mul(self, a: object, b: object) -> object:
        return self.tf.mul(a, b)

    def div(self, a: object, b: object) -> object:
        return self.tf.div(a, b)

    def offset(self, x: object, value: float) -> object:
        return self.tf.add(x, self.tf.scalar(value))

    def mean(self, x: object) -> object:
        return self.tf.mean(x)

    def square(self, x: object) -> object:
        return self.tf.square(x)

    def channel(self, x: object, index: int) -> object:
        return self.tf.slice(x, to_js([0, 0, 0, index]), to_js([-1, -1, -1, 1]))

    def normalize(self, x: object) -> object:
        moments = self.tf.moments(x)
        std = self.tf.sqrt(moments.variance)
        return self.tf.div(x, self.tf.add(std, self.tf.scalar(1e-8)))

    def clip(self, x: object, low: float, high: float) -> object:
        return self.tf.clipByValue(x, low, high)

    def max_abs(self, x: object) -> object:
        return self.tf.max(self.tf.abs(x))

    def count_nonfinite(self, x: object) -> object:
        return self.tf.sum(self.tf.cast(self.tf.logicalNot(self.tf.isFinite(x)), "float32"))

    def activations(self, x: object, layers: list) -> list:
        result = self.model.execute(x, to_js([self.nodes[name] for name in layers]))
        if len(layers) == 1 and not hasattr(result, "length"):
            return [result]
        return [result[i] for i in range(len(layers))]

    def value_and_grad(self, objective: object, x: object, scale: float) -> tuple:
        proxy = create_proxy(lambda t: objective(self, t, scale))
        try:
            result = self.tf.valueAndGrad(proxy)(x)
        finally:
            destroy = getattr(proxy, "destroy", None)  # Pyodide needs it; MicroPython has none
            if destroy is not None:
                destroy()
        return result.value, result.grad

    def zoom(self, x: object, factor: float, degrees: float) -> object:
        """Centre-fixed zoom and turn, bilinear, edges clamped (see zoom.zoom_transform)."""
        height, width = self.size(x)
        matrix = self.tf.tensor2d(to_js(zoom_transform(height, width, factor, degrees)),
                                  to_js([1, 8]), "float32")
        return self.tf.image.transform(x, matrix, "bilinear", "nearest", 0, to_js([height, width]))

    def warp(self, x: object, flow: object) -> object:
        """x read at (col + u, row + v), bilinear, edges clamped: four gathers of the
        corners (tfjs has no grid sampler), the same arithmetic as native's warp. Indices
        are float sums cast to int32 with a quarter added, so truncation and rounding casts
        both land on the integer (exact in float32 below 2**24 pixels)."""
        tf = self.tf
        height, width = self.size(x)
        cols = tf.reshape(tf.range(0, width, 1, "float32"), to_js([1, 1, width, 1]))
        rows = tf.reshape(tf.range(0, height, 1, "float32"), to_js([1, height, 1, 1]))
        sx = tf.clipByValue(tf.add(cols, self.channel(flow, 0)), 0, width - 1)
        sy = tf.clipByValue(tf.add(rows, self.channel(flow, 1)), 0, height - 1)
        x0 = tf.floor(sx)
        y0 = tf.floor(sy)
        fx = tf.sub(sx, x0)
        fy = tf.sub(sy, y0)
        x1 = tf.minimum(tf.add(x0, tf.scalar(1.0)), tf.scalar(width - 1.0))
        y1 = tf.minimum(tf.add(y0, tf.scalar(1.0)), tf.scalar(height - 1.0))
        flat = tf.reshape(x, to_js([height * width, -1]))
        shape = to_js([1, height, width, int(x.shape[3])])

        def at(yy: object, xx: object) -> object:
            index = tf.add(tf.add(tf.mul(yy, tf.scalar(float(width))), xx), tf.scalar(0.25))
            index = tf.cast(tf.reshape(index, to_js([-1])), "int32")
            return tf.reshape(tf.gather(flat, index), shape)

        a, b, c, d = at(y0, x0), at(y0, x1), at(y1, x0), at(y1, x1)
        top = tf.add(a, tf.mul(tf.sub(b, a), fx))
        bottom = tf.add(c, tf.mul(tf.sub(d, c), fx))
        return tf.add(top, tf.mul(tf.sub(bottom, top), fy))

    def box_blur(self, x: object, size: int) -> object:
        return self.tf.avgPool(x, size, 1, "same")

    def rows(self, x: object, step: int) -> object:
        channels = int(x.shape[3])
        if step > 1:
            x = self.tf.stridedSlice(x, to_js([0, 0, 0, 0]), to_js([int(x.shape[0]),
                                     int(x.shape[1]), int(x.shape[2]), channels]),
                                     to_js([1, step, step, 1]))
        return self.tf.reshape(x, to_js([-1, channels]))

    def dots(self, x: object, table: object) -> object:
        return self.tf.matMul(x, table, False, True)

    def row_max(self, x: object) -> object:
        return self.tf.max(x, 1)

    def tidy(self, fn: object) -> list:
        engine = self.tf.engine()
        engine.startScope()
        try:
            kept = fn()
        except BaseException:
            engine.endScope()
            raise
        engine.endScope(to_js(kept))
        return kept

    async def read(self, t: object) -> list:
        values = await (self.guard(t).data() if self.reader is None else self.reader(t))
        return [float(values[i]) for i in range(int(values.length))]

    def dispose(self, t: object) -> None:
        self.tf.dispose(t)
