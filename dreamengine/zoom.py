"""Dream zoom: the original DeepDream notebook's endless zoom, one frame at a time.

Each frame scales the last one up about its centre by `zoom` (and turns it by `rotation`
degrees, counter-clockwise), crops back to size, then dreams `steps` gradient steps on it at
full size only: no octave pyramid, the dream accumulates over frames instead. What the
network painted keeps growing towards the viewer while new detail appears in the middle.

`zoom_frames` is a generator that yields after every frame (close it to cancel: its
`finally` frees every tensor it holds), so the page can paint and encode each frame and stay
responsive; memory stays flat however many frames are made, since only the current frame,
its gradient and loss are held. `dream_zoom` is the one async loop that drives it, for the
page and the command line alike, like `render.dream`.

The zoom itself is one backend op, `ops.zoom(x, factor, degrees)`: an affine resample with
bilinear interpolation whose output pixel (x, y) reads the input at the point given by
`zoom_transform` (pixel centres at integer coordinates, the centre of the image fixed),
edges clamped (a point outside reads the nearest edge pixel). Not reflected: tfjs 4.22's
wasm Transform kernel disagrees with its cpu kernel and TensorFlow in "reflect" mode (1215
of 5883 values, by up to 1.9, at 0.8x and -30 degrees) while "nearest" matches exactly.
Zooming in without rotation never reads outside; a rotated frame's corners show short
streaks of edge colour, which the next steps dream over.
"""

import math

from dreamengine.health import vital_signs
from dreamengine.presets import VALUE_RANGE
from dreamengine.render import call, drive, gradient_step
from dreamengine.rng import Rng
from dreamengine.transforms import Transforms

# Per frame, the zoom factor and the rotation in degrees: the one table of both ranges.
# "valid": what the engine accepts (`check_settings` refuses the rest, with a sentence); the
# command line may ask any of it, zooming out (below 1) or turning hard included.
# "offered": the narrower range the page offers a visitor or an embedding page
# (pyscript_app/settings.py clamps URL and message values into it; its fields show it): a
# dive inwards with at most a gentle turn. Zooming out, or turning far, fills more of every
# frame's border with streaks of clamped edge pixels (see above): something to try on the
# command line, which on the page would look like a fault.
ZOOM_RANGES = {
    "zoom": {"valid": (0.5, 2.0), "offered": (1.0, 1.5)},
    "rotation": {"valid": (-45.0, 45.0), "offered": (-10.0, 10.0)},
}


def _text(number: float) -> str:
    """2.0 as "2", 0.5 as "0.5" (the same in MicroPython and CPython)."""
    return str(int(number)) if number == int(number) else str(number)


def zoom_transform(height: int, width: int, factor: float, degrees: float) -> list:
    """The 8 projective coefficients [a0, a1, a2, b0, b1, b2, c0, c1] of a centred zoom.

    In the convention of TensorFlow's ImageProjectiveTransform and tfjs's
    `tf.image.transform`: output pixel (x, y) samples the input at
    ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1. Here the content
    grows by `factor` about the centre ((w - 1) / 2, (h - 1) / 2) and turns `degrees`
    counter-clockwise as seen on screen (y points down), so each output point reads the
    input at centre + R(-degrees) (p - centre) / factor. Shared by both backends so they
    resample at exactly the same points.
    """
    theta = degrees * math.pi / 180.0
    cos = math.cos(theta) / factor
    sin = math.sin(theta) / factor
    cx = (width - 1) / 2.0
    cy = (height - 1) / 2.0
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    return [a0, a1, cx - a0 * cx - a1 * cy, b0, b1, cy - b0 * cx - b1 * cy, 0.0, 0.0]


def check_settings(frames: int, zoom: float, rotation: float, steps: int,
                   step_size: float) -> None:
    """Refuse settings that cannot make a zoom, with a sentence saying which and why."""
    if frames < 1:
        raise ValueError("frames must be at least 1 (got " + str(frames) + ")")
    low, high = ZOOM_RANGES["zoom"]["valid"]
    if not low <= zoom <= high:
        raise ValueError("zoom must be between " + _text(low) + " and " + _text(high)
                         + " per frame (got " + str(zoom)
                         + "); 1.05 zooms in 5% a frame, below 1 zooms out")
    low, high = ZOOM_RANGES["rotation"]["valid"]
    if not low <= rotation <= high:
        raise ValueError("rotation must be between " + _text(low) + " and " + _text(high)
                         + " degrees per frame (got " + str(rotation) + ")")
    if steps < 0:
        raise ValueError("steps must be 0 or more (got " + str(steps) + ")")
    if not step_size > 0:
        raise ValueError("step_size must be positive (got " + str(step_size) + ")")


class ZoomFrame:
    """One finished frame. Tensors are borrowed: valid until the next frame."""

    def __init__(self, index: int, frames: int, image: object, loss: object,
                 signs: object) -> None:
        self.index = index  # 0-based; frame 0 is the photo dreamt, not yet zoomed
        self.frames = frames
        self.image = image  # (1, h, w, 3), the caller's image size
        self.loss = loss  # objective at the frame's last step: a tensor; a float in dream_zoom
        self.signs = signs  # the first step's vital signs (health.py), else None


def zoom_frames(ops: object, image: object, objective: object, frames: int = 120,
                zoom: float = 1.05, rotation: float = 0.0, steps: int = 5,
                step_size: float = 0.02, transforms: object = None, seed: int = 0,
                value_range: tuple = VALUE_RANGE) -> object:
    """Yield a ZoomFrame after each of `frames` frames of zoom-and-dream from `image`.

    The caller keeps ownership of `image` (1, h, w, 3 in `value_range`). Frame 0 is `image`
    dreamt `steps` steps; every later frame zooms the previous one first. Copy a frame's
    image (`ops.copy(frame.image)`) to keep it past the next
    frame. Closing the generator early frees everything it allocated.
    """
    check_settings(frames, zoom, rotation, steps, step_size)
    transforms = transforms or Transforms()
    rng = Rng(seed)
    height, width = ops.size(image)
    # Held between frames: the frame so far, its last loss, the first step's vital signs.
    current = loss = signs = None
    try:
        current = ops.copy(image)
        for index in range(frames):
            if index > 0:
                previous = current
                current = ops.tidy(lambda p=previous: [ops.zoom(p, zoom, rotation)])[0]
                ops.dispose(previous)
            ops.dispose_all(loss, signs)
            loss = signs = None
            for step in range(steps):
                shift = transforms.shift(rng, height, width)
                updated, grad, step_loss = gradient_step(
                    ops, current, objective, step_size, transforms, shift, value_range)
                if index == 0 and step == 0:
                    signs = ops.tidy(lambda before=current, after=updated, g=grad: [
                        vital_signs(ops, before, after, g)])[0]
                ops.dispose(grad)
                ops.dispose(current)
                current = updated
                ops.dispose_all(loss)
                loss = step_loss
            yield ZoomFrame(index, frames, current, loss, signs)
    finally:
        ops.dispose_all(current, loss, signs)


async def dream_zoom(ops: object, image: object, objective: object, frames: int = 120,
                     zoom: float = 1.05, rotation: float = 0.0, steps: int = 5,
                     step_size: float = 0.02, transforms: object = None, seed: int = 0,
                     on_frame: object = None, value_range: tuple = VALUE_RANGE) -> int:
    """Make a whole zoom; returns how many frames were delivered to `on_frame`.

    `on_frame(frame)` (a function or a coroutine function) is called after every frame with
    `frame.loss` read as a float and `frame.image` borrowed until it returns; returning False
    stops the zoom (everything is freed). After the first step the vital signs are read, and
    a backend that computed nothing raises BrokenBackendError, as in `render.dream`. Settings
    are checked before anything is computed (ValueError). Natively:
    `tf_backend.finish(dream_zoom(...))`.
    """
    check_settings(frames, zoom, rotation, steps, step_size)
    gen = zoom_frames(ops, image, objective, frames, zoom, rotation, steps, step_size,
                      transforms, seed, value_range)
    delivered, _ = await drive(ops, gen, objective, lambda frame: call(on_frame, frame))
    return delivered
