"""The render loop: octaves, steps, tiled gradients, one step at a time.

`dream_steps` is a generator that yields after every gradient step, so a caller can paint a
preview and stay responsive, and cancels by closing it: its `finally` frees every tensor it
still holds. `dream` is the one loop that drives it, for the page and the command line
alike: it reads the loss and the first step's vital signs asynchronously (GPU backends must
never be read synchronously), awaits the caller's `on_step`, and stops when that returns
False.

The backend (`ops`) is an `ops.Ops`: the tensor operations, documented there.
"""

from dreamengine.health import diagnose, vital_signs
from dreamengine.objective import Objective
from dreamengine.presets import VALUE_RANGE
from dreamengine.rng import Rng
from dreamengine.schedule import Schedule
from dreamengine.transforms import Transforms


class BrokenBackendError(RuntimeError):
    """The backend computed nonsense (see `health.diagnose`); the message says what."""


class SilentObjectiveError(ValueError):
    """The objective's gradient is zero on this image, though the backend works: e.g. a
    channel that never fires on it (a dead ReLU channel on grey)."""


async def check_first_step(ops: object, signs: object, objective: object, image: object) -> None:
    """Raise if the first step's vital signs say nothing was computed.

    A zero gradient has two causes: a backend that returns zeros, or an objective that is
    flat here (one channel that never fires on this image). A probe tells them apart: the
    plain mean of the same layers, whose gradient on any image is never zero in a working
    network.
    """
    problem = diagnose(await ops.read(signs))
    if problem is None:
        return
    if problem.startswith("returned no gradient"):
        probe = Objective(dict.fromkeys(objective.layers, 1.0))
        loss, grad = ops.tidy(lambda: list(ops.value_and_grad(probe, image, 1.0)))
        try:
            largest = (await ops.read(ops.tidy(lambda: [ops.max_abs(grad)])[0]))[0]
        finally:
            ops.dispose(loss)
            ops.dispose(grad)
        if largest > 0.0:
            raise SilentObjectiveError("the chosen layers or channel do not respond to this "
                                       "image (their gradient is zero)")
    raise BrokenBackendError(problem)


class StepInfo:
    """Progress after one step. Tensors are borrowed: valid until the next step."""

    def __init__(self, octave: int, octaves: int, step: int, steps: int, done: int,
                 total: int, loss: object, image: object, gradient: object,
                 shift: tuple, signs: object) -> None:
        self.octave = octave  # 0-based, smallest octave first
        self.octaves = octaves
        self.step = step  # 0-based within the octave
        self.steps = steps
        self.done = done  # steps completed so far, over the whole dream
        self.total = total
        self.loss = loss  # objective before this step's update: a tensor; a float in `dream`
        self.image = image
        self.gradient = gradient  # normalised gradient applied in this step
        self.shift = shift  # (dy, dx) roll of this step
        self.signs = signs  # the first step's vital signs (health.py), else None


def tiled_gradient(ops: object, image: object, objective: object, transforms: object) -> tuple:
    """Loss (a scalar tensor) and gradient of the whole image, one tile at a time.

    Each row of tiles is assembled in its own scope, so that at most one row of tile
    temporaries is alive at a time: what lets a 4096 px image fit in a browser tab.
    """
    height, width = ops.size(image)
    rows = transforms.tiles(height)
    cols = transforms.tiles(width)
    if len(rows) == len(cols) == 1:
        loss, grad = ops.tidy(lambda: list(ops.value_and_grad(objective, image, 1.0)))
        return loss, grad
    parts = []  # [gradient, loss] of each row of tiles
    try:
        for y0, y1 in rows:
            parts.append(ops.tidy(lambda y0=y0, y1=y1: _tile_row(
                ops, image, objective, transforms, y0, y1, cols)))
        if len(parts) == 1:
            return parts[0][1], parts[0][0]
        grad, loss = ops.tidy(lambda: [ops.concat([p[0] for p in parts], 1),
                                       _sum(ops, [p[1] for p in parts])])
    finally:
        if len(parts) > 1:
            for part in parts:
                for tensor in part:
                    ops.dispose(tensor)
    return loss, grad


def _sum(ops: object, tensors: list) -> object:
    total = tensors[0]
    for tensor in tensors[1:]:
        total = ops.add(total, tensor)
    return total


def _tile_row(ops: object, image: object, objective: object, transforms: object,
              y0: int, y1: int, cols: list) -> list:
    """[gradient, loss] of one row of tiles, each computed with `margin` pixels of context.

    Each tile sees that much context around it and only its own part of the gradient is
    kept: pixels near a seam then get (almost) every contribution they would get untiled,
    instead of a zero-padded border's.
    """
    height, width = ops.size(image)
    m = transforms.margin
    col_grads = []
    losses = []
    for x0, x1 in cols:
        ey0, ey1 = max(0, y0 - m), min(height, y1 + m)
        ex0, ex1 = max(0, x0 - m), min(width, x1 + m)
        share = (ey1 - ey0) * (ex1 - ex0) / (height * width)
        value, grad = ops.value_and_grad(objective, ops.crop(image, ey0, ey1, ex0, ex1), share)
        core = (y1 - y0) * (x1 - x0) / ((ey1 - ey0) * (ex1 - ex0))
        losses.append(ops.scale(value, core))
        col_grads.append(ops.crop(grad, y0 - ey0, y1 - ey0, x0 - ex0, x1 - ex0))
    grad = col_grads[0] if len(col_grads) == 1 else ops.concat(col_grads, 2)
    return [grad, _sum(ops, losses)]


def gradient_step(ops: object, image: object, objective: object, step_size: float,
                  transforms: object, shift: tuple, value_range: tuple) -> tuple:
    """One step of ascent: roll by `shift`, tiled gradient, roll back, normalise, update, clip.

    Returns (new image, normalised gradient, loss), all owned by the caller. Each stage runs
    in its own scope and frees its input as soon as it is done, so a step holds about three
    image-sized tensors at a time besides `image`, not ten.
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


def dream_shifts(sizes: list, steps: int, transforms: object, seed: int = 0) -> list:
    """The roll of every step of a dream, one list per octave of `sizes`: what `dream_steps`
    uses, and what the page prepares its GPU programs for before the dream
    (pyscript_app/prepare.py: without shape uniforms WebGL compiles a roll per shift)."""
    rng = Rng(seed)
    return [[transforms.shift(rng, h, w) for _ in range(steps)] for h, w in sizes]


def dream_steps(ops: object, image: object, objective: object, schedule: object = None,
                transforms: object = None, seed: int = 0,
                value_range: tuple = VALUE_RANGE) -> object:
    """Dream `image` (1, h, w, 3 in `value_range`), yielding a StepInfo after every step.

    The caller keeps ownership of `image`. The last StepInfo's image is the result: copy it
    (`ops.copy(info.image)`) before closing. Closing the generator early (cancel) frees
    everything the dream allocated.
    """
    schedule = schedule or Schedule()
    transforms = transforms or Transforms()
    height, width = ops.size(image)
    sizes = schedule.octave_sizes(height, width)
    shifts = dream_shifts(sizes, schedule.steps, transforms, seed)
    total = len(sizes) * schedule.steps
    done = 0
    full_size = False
    # Tensors held between steps: the image so far, the last step's gradient, loss and vital
    # signs (borrowed by its StepInfo), the detail carried to the next octave, its base.
    current = grad = loss = signs = detail = base = None
    try:
        for octave, (h, w) in enumerate(sizes):
            full_size = (h, w) == (height, width)  # the last octave: no copy of the photo
            base = image if full_size else ops.tidy(
                lambda h=h, w=w: [ops.resize(image, h, w)])[0]
            if detail is None:
                current = ops.copy(base)
            else:
                previous_detail = detail
                current = ops.tidy(lambda h=h, w=w, b=base, d=previous_detail: [
                    ops.add(b, ops.resize(d, h, w))])[0]
                ops.dispose(previous_detail)
                detail = None
            for step in range(schedule.steps):
                shift = shifts[octave][step]
                ops.dispose_all(grad, loss, signs)  # only the last StepInfo needed them
                grad = loss = signs = None
                updated, grad, loss = gradient_step(
                    ops, current, objective, schedule.step_size, transforms, shift, value_range)
                if done == 0:
                    signs = ops.tidy(lambda before=current, after=updated, g=grad: [
                        vital_signs(ops, before, after, g)])[0]
                ops.dispose(current)
                current = updated
                done += 1
                yield StepInfo(octave, len(sizes), step, schedule.steps, done, total, loss,
                               current, grad, shift, signs)
            if octave < len(sizes) - 1:
                detail = ops.tidy(lambda c=current, b=base: [ops.sub(c, b)])[0]
                ops.dispose(current)
                current = None
            if not full_size:
                ops.dispose(base)
            base = None
    finally:
        ops.dispose_all(current, grad, loss, signs, detail, None if full_size else base)


async def dream(ops: object, image: object, objective: object, schedule: object = None,
                transforms: object = None, seed: int = 0, on_step: object = None,
                value_range: tuple = VALUE_RANGE) -> object:
    """Run a whole dream; the result is owned by the caller, None if `on_step` said stop.

    `on_step(info)` (a function or a coroutine function) is called after every step with
    `info.loss` read as a float; returning False stops the dream. After the first step the
    vital signs are read, and a backend that computed nothing raises BrokenBackendError.
    Natively: `asyncio.run(dream(...))`.
    """
    result = []

    async def each(info: object) -> object:
        outcome = await call(on_step, info)
        if outcome is not False and info.done == info.total:
            result.append(ops.copy(info.image))  # before the generator frees it
        return outcome

    steps = dream_steps(ops, image, objective, schedule, transforms, seed, value_range)
    _, stopped = await drive(ops, steps, objective, each)
    return None if stopped or not result else result[0]


async def call(fn: object, arg: object) -> object:
    """fn(arg), awaited when fn is a coroutine function (None when fn is None)."""
    if fn is None:
        return None
    outcome = fn(arg)
    if hasattr(outcome, "send"):  # a coroutine, in CPython and MicroPython alike
        outcome = await outcome
    return outcome


async def drive(ops: object, items: object, objective: object, on_item: object) -> tuple:
    """The one async loop of a dream (StepInfo) or a zoom (ZoomFrame) generator.

    For each item: the first step's vital signs are checked (BrokenBackendError), its loss
    read as a float, asynchronously, then `on_item(item)` is awaited; returning False stops.
    The generator is closed whatever happens, which frees what it holds. Returns (how many
    items reached `on_item`, whether it said stop).
    """
    delivered = 0
    try:
        for item in items:
            if item.signs is not None:
                await check_first_step(ops, item.signs, objective, item.image)
            if item.loss is not None:
                item.loss = (await ops.read(item.loss))[0]
            outcome = await on_item(item)
            delivered += 1
            if outcome is False:
                return delivered, True
    finally:
        items.close()
    return delivered, False
