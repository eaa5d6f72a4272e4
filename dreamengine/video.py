"""Dreaming a video, frame by frame, so the dream moves with the picture instead of flickering.

Each frame dreamt on its own flickers: the patterns are born anew every frame. Each frame
started from the previous dream, left where it was, smears: the patterns stay put while the
picture moves under them. So, as DeepDreamVideoOpticalFlow does it offline, every frame after
the first starts from

    start = frame + blend * (warp(previous dream, flow) - frame)

where `flow` (flow.py) says where each pixel of this frame was in the previous source frame,
so the previous dream is carried along with the motion, and `blend` is a per-pixel ratio:
`blend` where the picture stands still, `blend_moving` where it moves by `moving_pixels` or
more, and none where the warped previous *source* frame disagrees with this one (new
content, an occlusion, a cut: there the flow has nothing to carry). Then `steps` gradient
steps at full size dream on it (no octaves: the carried dream already holds them). The first
frame gets a whole dream, octaves and all.

Brightness cannot run away (DeepDreamAnim's "flow behaves additive"): the start is a convex
mix of the new frame and the previous dream, so what the steps add decays by `blend` a frame
instead of piling up; bench/video.py measures it over hundreds of frames.

`VideoDreamer` holds what one frame hands the next (the previous source and dream) and frees
it in `close`; its `dream` is async, driven by `render.dream`, so the page can paint, encode
and stay responsive between steps, and the command line runs it with `tf_backend.finish`.
"""

from dreamengine import flow as flows
from dreamengine.presets import VALUE_RANGE, VIDEO
from dreamengine.render import dream
from dreamengine.schedule import Schedule


class Coherence:
    """How a frame inherits the previous dream: with or without optical flow, the blend ratio
    where the picture is still and where it moves, the motion (pixels) that counts as
    moving, and the difference (grey, in [-1, 1] units) between this frame and the previous
    one read along the flow beyond which nothing is inherited."""

    def __init__(self, use_flow: bool = True, blend: float = VIDEO["blend"],
                 blend_moving: float = VIDEO["blend_moving"],
                 moving_pixels: float = 2.0, mismatch: float = 0.25,
                 flow: object = None) -> None:
        for name, value in (("blend", blend), ("blend_moving", blend_moving)):
            if not 0.0 <= value < 1.0:
                raise ValueError(name + " must be at least 0 and below 1 (got " + str(value)
                                 + "): 0 dreams each frame afresh, 0.9 carries most of the "
                                 "previous dream")
        if not moving_pixels > 0 or not mismatch > 0:
            raise ValueError("moving_pixels and mismatch must be positive")
        self.use_flow = bool(use_flow)
        self.blend = float(blend)
        self.blend_moving = float(blend_moving)
        self.moving_pixels = float(moving_pixels)
        self.mismatch = float(mismatch)
        self.flow = flow or flows.Flow()


def carried_start(ops: object, frame: object, previous_source: object,
                  previous_dream: object, coherence: object) -> object:
    """Where a frame's steps start: the frame with the previous dream carried onto it."""
    if not coherence.use_flow:
        return ops.add(frame, ops.scale(ops.sub(previous_dream, frame), coherence.blend))
    flow = flows.optical_flow(ops, frame, previous_source, coherence.flow)
    moving = flows.motion(ops, flow, coherence.moving_pixels)
    blend = ops.offset(ops.scale(moving, coherence.blend_moving - coherence.blend),
                       coherence.blend)
    # 1 where the previous source read along the flow matches this frame, 0 beyond mismatch.
    error = flows.grey(ops, ops.square(ops.sub(ops.warp(previous_source, flow), frame)))
    trust = ops.clip(ops.offset(ops.scale(error, -1.0 / (coherence.mismatch ** 2)), 1.0),
                     0.0, 1.0)
    carried = ops.warp(previous_dream, flow)
    return ops.add(frame, ops.mul(ops.sub(carried, frame), ops.mul(blend, trust)))


class VideoDreamer:
    """Dreams the frames of one video in order; `close()` frees what it holds.

    `first`: the schedule of the first frame's whole dream; `steps`, `step_size`: each later
    frame's. Frames are (1, h, w, 3) in `value_range`, all the same size, owned by the
    caller; the dream `dream` returns is borrowed until the next call (copy it to keep it).
    """

    def __init__(self, ops: object, objective: object, first: object = None,
                 steps: int = VIDEO["steps"], step_size: float = VIDEO["step_size"],
                 transforms: object = None, coherence: object = None, seed: int = 0,
                 value_range: tuple = VALUE_RANGE) -> None:
        if steps < 1:
            raise ValueError("steps per frame must be at least 1 (got " + str(steps) + ")")
        self.ops = ops
        self.objective = objective
        self.first = first or Schedule()
        self.later = Schedule(1, 1.0, steps, step_size, self.first.min_side)
        self.transforms = transforms
        self.coherence = coherence or Coherence()
        self.seed = seed
        self.value_range = value_range
        self.index = 0  # frames dreamt so far
        self.source = self.dreamt = None  # the previous frame and its dream

    async def dream(self, frame: object, on_step: object = None) -> object:
        """The dream of the next frame (borrowed), or None if `on_step` said stop; the
        previous frame is then still the last one dreamt."""
        ops = self.ops
        if self.dreamt is None:
            start, schedule = ops.copy(frame), self.first
        else:
            start = ops.tidy(lambda: [carried_start(ops, frame, self.source, self.dreamt,
                                                    self.coherence)])[0]
            schedule = self.later
        try:
            dreamt = await dream(ops, start, self.objective, schedule, self.transforms,
                                 self.seed + self.index, on_step, self.value_range)
        finally:
            ops.dispose(start)
        if dreamt is None:
            return None
        ops.dispose_all(self.source, self.dreamt)
        self.source, self.dreamt = ops.copy(frame), dreamt
        self.index += 1
        return dreamt

    def close(self) -> None:
        """Free the previous frame and dream (the dreamer can start a new video after)."""
        self.ops.dispose_all(self.source, self.dreamt)
        self.source = self.dreamt = None
        self.index = 0
