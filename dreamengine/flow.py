"""Dense optical flow and warping, written in backend ops so page and command line share them.

What a video dream needs from one frame to the next is where each pixel of the new frame was
in the previous one: then the previous *dream* can be carried along with the motion instead
of being painted afresh (flicker) or left where it was (patterns sliding over a moving
picture). `optical_flow` estimates that with pyramidal Lucas-Kanade:

* both frames go to grey and down a pyramid of halvings (large motions are small there);
* at each level, coarse to fine, the flow so far warps the second frame onto the first, and
  one Lucas-Kanade update solves, per pixel, the 2x2 least-squares system of the brightness
  constancy equation summed over a box window (a small Tikhonov term keeps flat regions,
  where the system is singular, at "no motion" instead of noise);
* the flow is scaled up to the next level and refined there.

Everything is elementwise arithmetic, box filters, resizes and one gather-based bilinear
warp (`ops.warp`), kernels every tfjs backend has (WebGL, WebGPU, wasm), so the same numbers
come out of TensorFlow and of the page (tests/test_flow.py). Horn-Schunck was the other
candidate: it needs tens of iterations of a global smoothness update per level, several times
the kernels for flows that, on video frames, were no better where the dream needs them
(textured regions; flat regions show no flicker whatever the flow).

A flow is (1, h, w, 2): channel 0 the horizontal displacement u, channel 1 the vertical v, in
pixels; `warp(x, flow)` reads x at (col + u, row + v).
"""

# Coarsest level: a level is added while its shorter side stays at least this.
MIN_LEVEL_SIDE = 24


class Flow:
    """Pyramidal Lucas-Kanade settings: pyramid depth, window side, updates per level, and
    the Tikhonov term added to the window's structure tensor (in grey units squared, grey in
    the model's [-1, 1] range)."""

    def __init__(self, levels: int = 5, window: int = 11, iterations: int = 2,
                 regularisation: float = 1e-3) -> None:
        if levels < 1 or iterations < 1:
            raise ValueError("levels and iterations must be at least 1")
        if window < 3 or window % 2 == 0:
            raise ValueError("window must be an odd number of pixels, 3 or more (got "
                             + str(window) + ")")
        if not regularisation > 0:
            raise ValueError("regularisation must be positive")
        self.levels = int(levels)
        self.window = int(window)
        self.iterations = int(iterations)
        self.regularisation = float(regularisation)

    def sizes(self, height: int, width: int) -> list:
        """(height, width) of each pyramid level, coarsest first, ending at the full size."""
        sizes = [(height, width)]
        while len(sizes) < self.levels:
            h, w = sizes[-1]
            h, w = (h + 1) // 2, (w + 1) // 2
            if min(h, w) < MIN_LEVEL_SIDE:
                break
            sizes.append((h, w))
        sizes.reverse()
        return sizes


def grey(ops: object, image: object) -> object:
    """(1, h, w, 3) -> (1, h, w, 1): the mean of the channels (what brightness constancy
    is asked of: colour adds little to the flow and triples the work)."""
    total = ops.add(ops.add(ops.channel(image, 0), ops.channel(image, 1)), ops.channel(image, 2))
    return ops.scale(total, 1.0 / 3.0)


def gradients(ops: object, x: object) -> tuple:
    """Central differences (d/dcol, d/drow) of x, edges repeated: same size as x."""
    h, w = ops.size(x)
    right = ops.concat([ops.crop(x, 0, h, 1, w), ops.crop(x, 0, h, w - 1, w)], 2)
    left = ops.concat([ops.crop(x, 0, h, 0, 1), ops.crop(x, 0, h, 0, w - 1)], 2)
    down = ops.concat([ops.crop(x, 1, h, 0, w), ops.crop(x, h - 1, h, 0, w)], 1)
    up = ops.concat([ops.crop(x, 0, 1, 0, w), ops.crop(x, 0, h - 1, 0, w)], 1)
    return ops.scale(ops.sub(right, left), 0.5), ops.scale(ops.sub(down, up), 0.5)


def lucas_kanade_update(ops: object, before: object, warped: object, flow: object,
                        settings: object) -> object:
    """The flow refined by one Lucas-Kanade step, given `warped` = after read along `flow`.

    Solves, per pixel, [Sxx+r Sxy; Sxy Syy+r] d = -[Sxt; Syt] with S the box-window sums of
    the products of the gradients Ix, Iy and the difference It = warped - before.
    """
    ix, iy = gradients(ops, warped)
    it = ops.sub(warped, before)
    size = settings.window
    reg = settings.regularisation
    sxx = ops.offset(ops.box_blur(ops.mul(ix, ix), size), reg)
    syy = ops.offset(ops.box_blur(ops.mul(iy, iy), size), reg)
    sxy = ops.box_blur(ops.mul(ix, iy), size)
    sxt = ops.box_blur(ops.mul(ix, it), size)
    syt = ops.box_blur(ops.mul(iy, it), size)
    det = ops.sub(ops.mul(sxx, syy), ops.mul(sxy, sxy))
    du = ops.div(ops.sub(ops.mul(sxy, syt), ops.mul(syy, sxt)), det)
    dv = ops.div(ops.sub(ops.mul(sxy, sxt), ops.mul(sxx, syt)), det)
    return ops.add(flow, ops.concat([du, dv], 3))


def scale_flow(ops: object, flow: object, height: int, width: int) -> object:
    """A coarser level's flow resized to (height, width), its displacements scaled with it."""
    h, w = ops.size(flow)
    resized = ops.resize(flow, height, width)
    return ops.concat([ops.scale(ops.channel(resized, 0), width / w),
                       ops.scale(ops.channel(resized, 1), height / h)], 3)


def optical_flow(ops: object, before: object, after: object, settings: object = None) -> object:
    """The flow (1, h, w, 2) from `before` to `after` (both (1, h, w, 3)): after read at
    p + flow(p) looks like before at p. Owned by the caller; every temporary is freed level
    by level."""
    settings = settings or Flow()
    before_grey, after_grey = ops.tidy(lambda: [grey(ops, before), grey(ops, after)])
    height, width = ops.size(before)
    flow = None
    try:
        for h, w in settings.sizes(height, width):
            b, a = ops.tidy(lambda h=h, w=w: [ops.resize(before_grey, h, w),
                                              ops.resize(after_grey, h, w)])
            previous = flow
            flow = ops.tidy(lambda h=h, w=w, f=previous, b=b: [
                ops.scale(ops.concat([b, b], 3), 0.0) if f is None  # no motion yet
                else scale_flow(ops, f, h, w)])[0]
            ops.dispose_all(previous)
            for _ in range(settings.iterations):
                previous = flow
                flow = ops.tidy(lambda f=previous, a=a, b=b: [
                    lucas_kanade_update(ops, b, ops.warp(a, f), f, settings)])[0]
                ops.dispose(previous)
            ops.dispose_all(a, b)
    except BaseException:
        ops.dispose_all(flow)
        raise
    finally:
        ops.dispose_all(before_grey, after_grey)
    return flow


def motion(ops: object, flow: object, pixels: float) -> object:
    """(1, h, w, 1): 0 where a pixel stands still, rising to 1 at `pixels` of displacement."""
    speed = ops.add(ops.square(ops.channel(flow, 0)), ops.square(ops.channel(flow, 1)))
    return ops.clip(ops.scale(speed, 1.0 / (pixels * pixels)), 0.0, 1.0)
