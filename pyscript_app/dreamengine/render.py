"""The render loop: octaves, steps, tiled gradients, one step at a time.

`dream_steps` is a generator that yields after every gradient step, so the page can paint a
preview and stay responsive, and a caller cancels by simply closing it: the `finally` blocks
free every tensor it still holds. `dream` runs it to the end for the native command line.

A backend (`ops`) provides, on 4-D float32 NHWC tensors:
    size(x) -> (h, w)                 resize(x, h, w)   bilinear, half-pixel centres
    roll(x, dy, dx)                   crop(x, y0, y1, x0, x1)
    concat(tensors, axis)             add(a, b)  sub(a, b)  scale(x, s)
    mean(x)  square(x)  channel(x, c) normalize(x)  divide by std + 1e-8
    clip(x, lo, hi)                   activations(x, layers) -> list, in that order
    value_and_grad(fn, x) -> (value, grad of fn at x)
    tidy(fn) -> fn's tensors, everything else made inside freed
    number(t) -> float                dispose(t)
"""

from dreamengine.rng import Rng
from dreamengine.schedule import Schedule
from dreamengine.transforms import Transforms


class StepInfo:
    """Progress after one step. `image` and `gradient` are borrowed: valid until the next step."""

    def __init__(self, octave: int, octaves: int, step: int, steps: int, done: int,
                 total: int, loss: float, image: object, gradient: object,
                 shift: tuple) -> None:
        self.octave = octave  # 0-based, smallest octave first
        self.octaves = octaves
        self.step = step  # 0-based within the octave
        self.steps = steps
        self.done = done  # steps completed so far, over the whole dream
        self.total = total
        self.loss = loss  # objective before this step's update
        self.image = image
        self.gradient = gradient  # normalised gradient applied in this step
        self.shift = shift  # (dy, dx) roll of this step


def tiled_gradient(ops: object, image: object, objective: object, transforms: object) -> tuple:
    """Loss and gradient of the whole image, computed one tile at a time.

    Each row of tiles is assembled in its own scope, so that at most one row of tile
    temporaries is alive at a time: what lets a 4096 px image fit in a browser tab.
    """
    height, width = ops.size(image)
    layers = objective.layers
    rows = transforms.tiles(height)
    cols = transforms.tiles(width)
    totals = []
    if len(rows) == len(cols) == 1:

        def whole() -> list:
            value, grad = ops.value_and_grad(
                lambda x: objective.loss(ops, ops.activations(x, layers), 1.0), image)
            totals.append(ops.number(value))
            return [grad]

        grad = ops.tidy(whole)[0]
        return totals[0], grad

    row_grads = []
    try:
        for y0, y1 in rows:
            row_grads.append(ops.tidy(lambda y0=y0, y1=y1: [
                _tile_row(ops, image, objective, transforms, y0, y1, cols, totals)])[0])
        grad = row_grads[0] if len(row_grads) == 1 else ops.tidy(
            lambda: [ops.concat(row_grads, 1)])[0]
    finally:
        if len(row_grads) > 1:
            for row in row_grads:
                ops.dispose(row)
    return sum(totals), grad


def _tile_row(ops: object, image: object, objective: object, transforms: object,
              y0: int, y1: int, cols: list, totals: list) -> object:
    """The gradient of one row of tiles, each computed with `margin` pixels of context.

    Each tile sees that much context around it and only its own part of the gradient is
    kept: pixels near a seam then get (almost) every contribution they would get untiled,
    instead of a zero-padded border's.
    """
    height, width = ops.size(image)
    m = transforms.margin
    col_grads = []
    for x0, x1 in cols:
        ey0, ey1 = max(0, y0 - m), min(height, y1 + m)
        ex0, ex1 = max(0, x0 - m), min(width, x1 + m)
        share = (ey1 - ey0) * (ex1 - ex0) / (height * width)

        def tile_loss(x: object, share: float = share) -> object:
            return objective.loss(ops, ops.activations(x, objective.layers), share)

        value, grad = ops.value_and_grad(tile_loss, ops.crop(image, ey0, ey1, ex0, ex1))
        core = (y1 - y0) * (x1 - x0) / ((ey1 - ey0) * (ex1 - ex0))
        totals.append(ops.number(value) * core)
        col_grads.append(ops.crop(grad, y0 - ey0, y1 - ey0, x0 - ex0, x1 - ex0))
    return col_grads[0] if len(col_grads) == 1 else ops.concat(col_grads, 2)


def gradient_step(ops: object, image: object, objective: object, step_size: float,
                  transforms: object, shift: tuple, value_range: tuple) -> tuple:
    """One step of ascent: roll by `shift`, tiled gradient, roll back, normalise, update, clip.

    Returns (new image, normalised gradient, loss). Each stage runs in its own scope and
    frees its input as soon as it is done, so a step holds about three image-sized tensors
    at a time besides `image`, not ten.
    """
    dy, dx = shift
    rolled = ops.tidy(lambda: [ops.roll(image, dy, dx)])[0]
    try:
        loss, grad = tiled_gradient(ops, rolled, objective, transforms)
    finally:
        ops.dispose(rolled)
    for stage in (lambda g: ops.roll(g, -dy, -dx), ops.normalize):
        previous = grad
        grad = ops.tidy(lambda g=previous, stage=stage: [stage(g)])[0]
        ops.dispose(previous)
    updated = ops.tidy(lambda: [ops.clip(ops.add(image, ops.scale(grad, step_size)),
                                         value_range[0], value_range[1])])[0]
    return updated, grad, loss


def dream_steps(ops: object, image: object, objective: object, schedule: object = None,
                transforms: object = None, seed: int = 0,
                value_range: tuple = (-1.0, 1.0)) -> object:
    """Dream `image` (1, h, w, 3 in `value_range`), yielding a StepInfo after every step.

    The caller keeps ownership of `image`. The last StepInfo's image is the result; call
    `ops.tidy(lambda: [ops.scale(info.image, 1.0)])` or similar to keep a copy before
    closing. Closing the generator early (cancel) frees everything the dream allocated.
    """
    schedule = schedule or Schedule()
    transforms = transforms or Transforms()
    rng = Rng(seed)
    height, width = ops.size(image)
    sizes = schedule.octave_sizes(height, width)
    total = len(sizes) * schedule.steps
    done = 0
    full_size = False
    current = None
    grad = None
    base = None
    detail = None
    try:
        for octave, (h, w) in enumerate(sizes):
            if grad is not None:
                ops.dispose(grad)
                grad = None
            full_size = (h, w) == (height, width)  # the last octave: no copy of the photo
            base = image if full_size else ops.tidy(
                lambda h=h, w=w: [ops.resize(image, h, w)])[0]
            if detail is None:
                current = ops.tidy(lambda b=base: [ops.scale(b, 1.0)])[0]
            else:
                previous_detail = detail
                current = ops.tidy(lambda h=h, w=w, b=base, d=previous_detail: [
                    ops.add(b, ops.resize(d, h, w))])[0]
                ops.dispose(previous_detail)
                detail = None
            for step in range(schedule.steps):
                shift = transforms.shift(rng, h, w)
                if grad is not None:  # the last step's gradient: only its StepInfo needed it
                    ops.dispose(grad)
                    grad = None
                updated, grad, loss = gradient_step(
                    ops, current, objective, schedule.step_size, transforms, shift, value_range)
                ops.dispose(current)
                current = updated
                done += 1
                yield StepInfo(octave, len(sizes), step, schedule.steps, done, total, loss,
                               current, grad, shift)
            if octave < len(sizes) - 1:
                detail = ops.tidy(lambda c=current, b=base: [ops.sub(c, b)])[0]
                ops.dispose(current)
                current = None
            if not full_size:
                ops.dispose(base)
            base = None
    finally:
        for tensor in (current, grad, detail) + (() if full_size else (base,)):
            if tensor is not None:
                ops.dispose(tensor)


def dream(ops: object, image: object, objective: object, schedule: object = None,
          transforms: object = None, seed: int = 0, on_step: object = None,
          should_cancel: object = None, value_range: tuple = (-1.0, 1.0)) -> object:
    """Run a whole dream and return the result (owned by the caller), or None if cancelled.

    `on_step(info)` is called after every step; `should_cancel()` is asked between steps.
    """
    result = None
    steps = dream_steps(ops, image, objective, schedule, transforms, seed, value_range)
    try:
        for info in steps:
            if on_step is not None:
                on_step(info)
            if info.done == info.total:
                result = ops.tidy(lambda info=info: [ops.scale(info.image, 1.0)])[0]
            elif should_cancel is not None and should_cancel():
                return None
    finally:
        steps.close()
    return result
