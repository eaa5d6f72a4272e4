"""The dreamer: the dream engine (dreamengine/) over the page's TF.js backend, one run at a
time, cancellable between steps. The page (app.py and its panels) and the scripts and tests
using `window.dreamframe.engine` (main.py) all dream through it.
"""

import json

import limits
import settings as settings_mod
from pagelogic import GpuLostError
from prepare import Preparer
from pyscript import window
from pyscript.ffi import is_none, to_js

from dreamengine.flow import optical_flow
from dreamengine.guide import GuideObjective
from dreamengine.plan import plan
from dreamengine.presets import VALUE_RANGE
from dreamengine.render import BrokenBackendError, dream, gradient_step
from dreamengine.tfjs_backend import TfjsBackend
from dreamengine.transforms import Transforms
from dreamengine.video import Coherence, VideoDreamer
from dreamengine.zoom import dream_zoom


class Dreamer:
    """One dream at a time on the page's backend; cancellable between steps."""

    def __init__(self, boot) -> None:
        self.boot = boot
        self.tf = boot.tf
        self.ops = TfjsBackend(boot.tf, boot.loaded, boot.guard, boot.read)
        self.use(boot.loaded.manifest)
        self.cancelled = False
        self.preparer = Preparer(self)
        # Seconds a gradient step takes per megapixel here, from the last run's steps (None
        # before one): what a video's time is estimated from before it starts.
        self.pace = None
        self.last_step = None  # (when the last step ended, its megapixels)

    def use(self, manifest) -> None:
        """What the engine needs to know of the model: its layers, name, smallest input and
        largest activation per pixel (for tile sizes)."""
        self.outputs = json.loads(window.JSON.stringify(manifest.outputs))
        self.model = str(manifest.model.name)
        self.min_side = int(manifest.input.min_side)
        self.per_pixel = float(manifest.input.largest_activation_per_pixel)

    def plan(self, options: dict) -> tuple:
        """Objective, schedule, transforms and seed of a dream with full settings here."""
        return plan(options, self.tile_limit, self.min_side)

    def max_elements(self) -> int | None:
        """The most values one tensor may hold on the running backend, None for no limit."""
        limit = self.boot.backend.maxElements
        return None if is_none(limit) else int(limit)

    def tile_limit(self, wanted: int) -> int:
        """The tile size to use on the running backend (limits.largest_tile)."""
        return limits.largest_tile(self.max_elements(), self.per_pixel, Transforms().margin,
                                   wanted)

    def options(self, options_json: str) -> dict:
        """Full settings from a JSON text, validated like URL settings."""
        return settings_mod.resolve(settings_mod.clean(json.loads(options_json), self.outputs),
                                    self.model)

    def reset(self) -> None:
        """Use the model the boot (re)loaded, after a backend or model change."""
        self.ops = TfjsBackend(self.tf, self.boot.loaded, self.boot.guard, self.boot.read)
        self.use(self.boot.loaded.manifest)
        self.preparer.forget()

    def check(self) -> None:
        """Raise the first failure of a guarded JS call (web/js/guard.js) since the last check.

        Such a call returned None instead of throwing; this turns it back into an exception
        that carries tfjs's own words ("memory access out of bounds", "context lost", ...).
        """
        fault = self.boot.takeFault()
        if not is_none(fault):
            raise RuntimeError(str(fault))

    def cancel(self) -> None:
        """Stop the running dream after its current step."""
        self.cancelled = True

    def between(self, on_each):
        """What the page does after every step or frame, around the caller's `on_each`:
        tfjs failures turned back into exceptions, a lost GPU noticed, a pause for the
        browser to paint and hear Stop. Returns False (stop) once cancelled."""

        async def after(item) -> bool:
            self.check()
            self.time_step(item)
            if on_each is not None:
                await on_each(item)
                self.check()
            lost = self.boot.gpuLost()
            if not is_none(lost):
                raise GpuLostError(str(lost))
            await self.boot.yieldToBrowser()
            return not self.cancelled

        return after

    def time_step(self, item) -> None:
        """Keep `pace` from the time between consecutive steps (not the first of a run)."""
        now = window.performance.now()
        shape = getattr(item, "image", None)
        megapixels = 0.0 if shape is None else int(shape.shape[1]) * int(shape.shape[2]) / 1e6
        if self.last_step is not None and megapixels > 0:
            self.pace = (now - self.last_step) / 1000.0 / megapixels
        self.last_step = now

    def objective(self, options: dict, plain, guide):
        """The plain objective, or, with a guide image, a guided one (its features computed
        now, on this backend; the caller disposes it)."""
        if guide is None or is_none(guide):
            return plain
        guided = GuideObjective(options["guide_layers"], options["guide_mix"],
                                plain if options["guide_mix"] < 1.0 else None)
        guided.check(self.outputs)
        guided.set_guide(self.ops, guide)
        return guided

    async def drive(self, loop, plain, options: dict, guide):
        """Run `loop(objective)` (the engine's dream or zoom) with the page's checks; the
        GPU's preparation gives way first and waits until it is over."""
        plain.check(self.outputs)
        self.preparer.claims += 1
        try:
            await self.preparer.halt()
            self.cancelled = False
            self.last_step = None
            self.boot.takeFault()  # anything left from before this dream is not its concern
            objective = None
            try:
                objective = self.objective(options, plain, guide)
                result = await loop(objective)
            except (BrokenBackendError, GpuLostError):
                raise
            except Exception:
                self.check()  # a failed JS call is the cause; the Python error only its echo
                raise
            finally:
                if objective is not None and objective is not plain:
                    objective.dispose(self.ops)
            self.check()
        finally:
            self.preparer.claims -= 1
        return result

    async def run(self, image, options: dict, on_step=None, guide=None):
        """Dream `image` ([1, h, w, 3] in [-1, 1]) with full settings; returns the result
        tensor (owned by the caller) or None if cancelled.

        `on_step(info)` (a coroutine function) gets every StepInfo; `guide` (a tensor like
        `image`) steers the dream. The loop is the engine's (`render.dream`). A backend that
        computes nothing raises render.BrokenBackendError.
        """
        plain, schedule, transforms, seed = self.plan(options)
        return await self.drive(lambda objective: dream(
            self.ops, image, objective, schedule, transforms, seed, self.between(on_step)),
            plain, options, guide)

    async def zoom(self, image, options: dict, on_frame=None, guide=None) -> int:
        """A dream zoom from `image` (dreamengine/zoom.py): `on_frame(frame)` (a coroutine
        function) gets every frame; returns how many frames were made."""
        plain, schedule, transforms, seed = self.plan(options)
        return await self.drive(lambda objective: dream_zoom(
            self.ops, image, objective, options["zoom_frames"], options["zoom"],
            options["rotation"], options["zoom_steps"], schedule.step_size, transforms, seed,
            self.between(on_frame)), plain, options, guide)

    async def video(self, options: dict, next_frame, on_frame,
                    guide=None) -> int:
        """Dream a video or the camera frame by frame (dreamengine/video.py); returns how
        many frames were dreamt.

        `next_frame()` (a coroutine function) gives the next source frame, a tensor this
        takes ownership of, or None at the end; `on_frame(index, dreamt)` (a coroutine
        function) paints and encodes each dream, borrowed until it returns. Stop (cancel)
        ends it after the current step; the frames made until then stay made.
        """
        plain, schedule, transforms, seed = self.plan(options)
        coherence = Coherence(options["video_flow"], options["video_blend"],
                              options["video_blend_moving"])

        async def loop(objective) -> int:
            frames = VideoDreamer(self.ops, objective, schedule, options["video_steps"],
                                  schedule.step_size, transforms, coherence, seed)
            made = 0
            try:
                while not self.cancelled:
                    frame = await next_frame()
                    if frame is None:
                        break
                    try:
                        dreamt = await frames.dream(frame, self.between(None))
                    finally:
                        self.ops.dispose(frame)
                    if dreamt is None:
                        break
                    await on_frame(made, dreamt)
                    self.check()
                    made += 1
            finally:
                frames.close()
            return made

        return await self.drive(loop, plain, options, guide)

    async def flow(self, before, after):
        """[flow, after read along it] (dreamengine/flow.py) on the page's backend, owned by
        the caller: for checking the page's flow against native TensorFlow's."""
        await self.preparer.halt()
        flow = optical_flow(self.ops, before, after)
        warped = self.ops.tidy(lambda: [self.ops.warp(after, flow)])[0]
        self.check()
        return to_js([flow, warped])

    async def dream(self, image, options_json: str, on_step=None, guide=None):
        """JS-facing `run`: options as JSON text, `on_step` a JS function given plain objects,
        `guide` an optional guide image tensor."""
        guarded = self.boot.guard(on_step)  # the caller's function may throw: guard.js

        async def report(info) -> None:
            guarded(to_js({"octave": info.octave, "octaves": info.octaves, "step": info.step,
                           "steps": info.steps, "done": info.done, "total": info.total,
                           "loss": info.loss, "image": info.image,
                           "gradient": info.gradient}))

        return await self.run(image, self.options(options_json),
                              report if on_step is not None else None, guide)

    async def zoom_js(self, image, options_json: str, on_frame=None, guide=None) -> int:
        """JS-facing `zoom`: `on_frame` a JS function given {index, frames, loss, image}."""
        guarded = self.boot.guard(on_frame)

        async def report(frame) -> None:
            guarded(to_js({"index": frame.index, "frames": frame.frames, "loss": frame.loss,
                           "image": frame.image}))

        return await self.zoom(image, self.options(options_json),
                               report if on_frame is not None else None, guide)

    async def step(self, image, options_json: str, dy: int, dx: int):
        """One gradient step with a given roll: [new image, gradient], owned by the caller.

        Async although it never waits: MicroPython's proxies hand a synchronous function's
        return value to JS as undefined, while a coroutine's result arrives through a Promise.

        For checking the page against the native reference step by step: DeepDream's
        gradient jumps whenever a ReLU gate flips, so two runs that differ by rounding drift
        apart over many steps, and only a step taken from the same image can be compared.
        """
        objective, schedule, transforms, _ = self.plan(self.options(options_json))
        objective.check(self.outputs)
        await self.preparer.halt()
        self.boot.takeFault()
        try:
            updated, grad, loss = gradient_step(self.ops, image, objective, schedule.step_size,
                                                transforms, (dy, dx), VALUE_RANGE)
        except Exception:
            self.check()
            raise
        self.ops.dispose(loss)
        self.check()
        return to_js([updated, grad])
