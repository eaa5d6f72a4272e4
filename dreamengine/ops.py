"""The tensor backend's protocol: every operation the engine asks of a tensor library.

Two backends implement it: `tfjs_backend.TfjsBackend` (TensorFlow.js, in the page) and
`native.tf_backend.TfBackend` (TensorFlow, the reference and the command line). The engine
touches tensors only through these methods, so the same algorithm runs on both, and
tests/test_backends_agree.py runs every method on both and compares. Tensors are 4-D float32
NHWC unless said otherwise. `copy` and `dispose_all` are written here once, from the others.
"""


class Ops:
    """Subclassed by each backend, which implements every method that raises here."""

    # --- shapes and geometry -----------------------------------------------------------

    def size(self, x: object) -> tuple:
        """(height, width) of x."""
        raise NotImplementedError

    def resize(self, x: object, height: int, width: int) -> object:
        """Bilinear, half-pixel centres, no corner alignment, no antialiasing."""
        raise NotImplementedError

    def roll(self, x: object, dy: int, dx: int) -> object:
        """x shifted by dy rows and dx columns, wrapping around."""
        raise NotImplementedError

    def crop(self, x: object, y0: int, y1: int, x0: int, x1: int) -> object:
        """x[:, y0:y1, x0:x1, :]."""
        raise NotImplementedError

    def concat(self, tensors: list, axis: int) -> object:
        """The tensors joined along `axis`."""
        raise NotImplementedError

    def stack(self, scalars: list) -> object:
        """Scalars as one 1-D tensor."""
        raise NotImplementedError

    def zoom(self, x: object, factor: float, degrees: float) -> object:
        """Centre-fixed zoom and counter-clockwise turn, same size, bilinear, edges clamped."""
        raise NotImplementedError

    def warp(self, x: object, flow: object) -> object:
        """x read at (col + u, row + v), flow (1, h, w, 2) = (u, v) in pixels: bilinear,
        edges clamped (a point outside reads the nearest edge pixel). See flow.py."""
        raise NotImplementedError

    def box_blur(self, x: object, size: int) -> object:
        """The mean over each size x size window (odd size, stride 1, same size out); at the
        edges over the part of the window inside the image."""
        raise NotImplementedError

    # --- arithmetic ----------------------------------------------------------------------

    def add(self, a: object, b: object) -> object:
        """a + b."""
        raise NotImplementedError

    def sub(self, a: object, b: object) -> object:
        """a - b."""
        raise NotImplementedError

    def scale(self, x: object, factor: float) -> object:
        """x * factor."""
        raise NotImplementedError

    def mul(self, a: object, b: object) -> object:
        """a * b, elementwise (a (1, h, w, 1) operand broadcasts over channels)."""
        raise NotImplementedError

    def div(self, a: object, b: object) -> object:
        """a / b, elementwise."""
        raise NotImplementedError

    def offset(self, x: object, value: float) -> object:
        """x + value."""
        raise NotImplementedError

    def mean(self, x: object) -> object:
        """The mean of every value, a scalar."""
        raise NotImplementedError

    def square(self, x: object) -> object:
        """x * x."""
        raise NotImplementedError

    def channel(self, x: object, index: int) -> object:
        """Channel `index` of x, (1, h, w, 1)."""
        raise NotImplementedError

    def normalize(self, x: object) -> object:
        """x divided by its standard deviation + 1e-8."""
        raise NotImplementedError

    def clip(self, x: object, low: float, high: float) -> object:
        """x clamped into [low, high]."""
        raise NotImplementedError

    def max_abs(self, x: object) -> object:
        """The largest absolute value, a scalar."""
        raise NotImplementedError

    def count_nonfinite(self, x: object) -> object:
        """How many values are NaN or infinite, a scalar."""
        raise NotImplementedError

    def rows(self, x: object, step: int) -> object:
        """Every step-th pixel down and across, as rows (n, c)."""
        raise NotImplementedError

    def dots(self, x: object, table: object) -> object:
        """x (n, c) times table (m, c) transposed: (n, m)."""
        raise NotImplementedError

    def row_max(self, x: object) -> object:
        """The largest value of each row of x (n, m): (n,)."""
        raise NotImplementedError

    # --- the network ---------------------------------------------------------------------

    def activations(self, x: object, layers: list) -> list:
        """The model's activations at `layers`, in that order."""
        raise NotImplementedError

    def value_and_grad(self, objective: object, x: object, scale: float) -> tuple:
        """(objective(ops, x, scale), its gradient with respect to x)."""
        raise NotImplementedError

    # --- memory and reads ----------------------------------------------------------------

    def tidy(self, fn: object) -> list:
        """fn()'s list of tensors; everything else made inside is freed."""
        raise NotImplementedError

    def dispose(self, t: object) -> None:
        """Free one tensor."""
        raise NotImplementedError

    async def read(self, t: object) -> list:
        """The values of t as floats, read asynchronously (a GPU backend must never be read
        synchronously in a dream)."""
        raise NotImplementedError

    def copy(self, x: object) -> object:
        """A tensor equal to x that its caller owns (x may be freed afterwards)."""
        return self.tidy(lambda: [self.scale(x, 1.0)])[0]

    def dispose_all(self, *tensors: object) -> None:
        """Free every tensor given; None is skipped."""
        for tensor in tensors:
            if tensor is not None:
                self.dispose(tensor)
