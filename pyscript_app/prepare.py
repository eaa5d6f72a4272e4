"""Compile before the click: a GPU backend's shader programs for the dream to come, prepared
while the visitor is still choosing a photo (issue 18).

On WebGL and WebGPU the first dream of a size compiles hundreds of programs, and tfjs
compiles each one the moment a kernel first needs it, blocking the page meanwhile (seconds a
step on SwiftShader; of the order of 100 ms a program on some desktop drivers). Here the
same work is done beforehand, in slices with the browser's own tasks in between:

1. compile: the engine's own dream loop (`render.dream_steps`: resize, roll, the tiled
   gradient of the objective, normalise, update, clip, the first step's vital signs), one
   step per octave, on a blank image of the dream's size, in tfjs's compile-only mode, with
   the rolls of that octave's other steps (`render.dream_shifts`: the dream's own) and the
   preview's pixels. Each octave is one synchronous pass that only builds programs
   (web/js/prepare.js); the programs are then made ready a few at a time (`settle`) while
   the driver compiles them.
2. warm (before the click only, when step 1 made new programs): the same steps once for
   real. Some drivers finish a program only when it first runs (ANGLE on SwiftShader builds
   its pipeline at the first draw: compile-only alone saved nothing there); a real step
   hands that work to the GPU process without blocking the page, as all programs exist.

What is prepared is found by running the engine, never from a list of programs: the shapes
are the octave (and tile) shapes of the dream itself, so whatever makes programs depend
less on the shape (WebGL shape uniforms) makes later preparations find more of them ready.
Before any photo is chosen a default dream of NOMINAL_SIZE is prepared; once a photo is
loaded, a dream of that photo with the current settings; when Dream is pressed, whatever
that dream still lacks (compile only: its own first steps do the warming).

One preparation runs at a time. A dream claims the GPU: idle preparation then stops after
its current slice and none starts until the dream is over. Programs are handed to tfjs only
once usable, so nothing that runs alongside (a preview, a test's own tfjs call) can pick up
a half-made one. Only GPU backends compile programs: on wasm and cpu nothing is done.
"""

import asyncio

from pyscript import window
from pyscript.ffi import create_proxy, is_none, to_js

from dreamengine.render import dream_shifts, dream_steps
from dreamengine.schedule import Schedule

# The photo prepared for before any is chosen (height, width): a small 3:4 landscape, so its
# warm-up computes little, big enough that the default schedule keeps all four octaves
# (the smallest 35 px, above MobileNetV2's 32).
NOMINAL_SIZE = (96, 128)


class Job:
    """One preparation: a dream's size and settings, and how far it got."""

    def __init__(self, key: tuple, size: tuple, options: dict, warm: bool,
                 on_progress, handle, ended, exact: bool = True) -> None:
        self.key = key
        self.exact = exact  # the size is a real photo's: every roll of the dream too
        self.size = size
        self.options = options
        self.warm = warm  # also run the steps once for real (idle preparation only)
        self.on_progress = on_progress  # fraction -> None, for the page's progress bar
        self.handle = handle  # prepare.js's job id (settle's progress and stop)
        self.proxy = None  # the progress callback handed to prepare.js
        self.ended = ended  # prepare.js deferred, resolved when the job is over
        self.stopped = False
        self.finished = False
        self.outcome = None  # "done", "stopped" or "failed"
        self.error = None
        self.new_programs = 0
        self.slices = 0  # pieces of work done, each followed by a task of the browser's
        self.settling = 0  # ... of them in the batch being settled now
        self.longest = {"compile": 0.0, "warm": 0.0}  # ms of the longest synchronous pass
        self.passes = 1  # octaves: one compile pass each (and one warm step each)
        self.shifts = []  # the dream's rolls, per octave (render.dream_shifts)
        self.units_done = 0  # passes and warm steps done

    def stop(self, js) -> None:
        """Stop after the current slice (an unsettled batch is abandoned)."""
        self.stopped = True
        js.stopJob(self.handle)

    def fraction(self, part: float = 0.0) -> float:
        """How far the job is, 0-1, `part` of the current unit done."""
        if self.outcome == "done":
            return 1.0
        units = self.passes * (2 if self.warm else 1)
        return min(1.0, (self.units_done + part) / units)


class Preparer:
    """Prepares the programs of the dreams to come on the page's backend (see the module)."""

    def __init__(self, dreamer) -> None:
        self.dreamer = dreamer
        self.boot = dreamer.boot
        self.js = dreamer.boot.guard(dreamer.boot.prepare)  # never throws into Python
        self.images = dreamer.boot.guard(dreamer.boot.images)
        self.job = None  # the running or last Job
        self.compiled = set()  # keys of dreams whose programs were all built
        self.warmed = set()  # ... and run once
        self.claims = 0  # dreams under way: no idle preparation meanwhile
        self.on_first = None  # called once, with the first job that ended done or failed
        # False (`?prepare=off`): programs are compiled as tfjs needs them, as without this
        # module (a page of many embeds; tests of other things, which it would slow down).
        self.enabled = True
        self.first_seen = False

    def applies(self) -> bool:
        """Whether preparing is on and the running backend compiles programs (WebGL,
        WebGPU)."""
        return self.enabled and bool(self.js.compiles(self.boot.tf))

    def forget(self) -> None:
        """Another backend or model: nothing of it is prepared yet."""
        if self.job is not None:
            self.job.stop(self.js)
        self.compiled = set()
        self.warmed = set()

    def key(self, size: tuple, options: dict) -> tuple:
        """What decides the programs of a dream: model, size, schedule, objective, tiles."""
        objective, schedule, transforms, _ = self.dreamer.plan(options)
        return (self.dreamer.model, tuple(size), schedule.octaves, schedule.octave_scale,
                schedule.min_side, objective.key, transforms.tile_size, transforms.margin,
                transforms.jitter > 0)

    def ready_for(self, size: tuple, options: dict) -> bool:
        """Whether a dream of `size` with `options` would find its programs built."""
        return not self.applies() or self.key(size, options) in self.compiled

    def report(self, job: Job, state: str) -> None:
        """Publish where preparation stands (window.dreamframe.preparation, an event)."""
        self.js.report(self.boot.tf, to_js({
            "state": state, "size": list(job.size), "fraction": job.fraction(),
            "slices": job.slices + job.settling, "compiled": job.new_programs, "warm": job.warm,
            "longest_compile_ms": job.longest["compile"], "longest_warm_ms": job.longest["warm"],
            "longest_settle_ms": float(self.js.longestSettle(job.handle) or 0),
            "error": job.error}))

    # --- starting and stopping ------------------------------------------------------------

    def idle(self, size: tuple, options: dict, exact: bool = True) -> None:
        """Prepare, in the background, for a dream of `size` with `options` (and warm up),
        unless a dream holds the GPU or this one is prepared already. `exact` False: the
        size is a guess (no photo yet), so the rolls of its other steps are not worth it."""
        if self.claims or not self.applies():
            return
        asyncio.create_task(self.ensure(size, options, True, None, True, exact))

    def stop_running(self) -> None:
        """Stop the running preparation after its current slice, without waiting."""
        if self.job is not None and not self.job.finished:
            self.job.stop(self.js)

    async def halt(self) -> None:
        """Stop the running preparation after its current slice and wait until it has."""
        job = self.job
        if job is not None and not job.finished:
            job.stop(self.js)
            await job.ended.promise

    async def ensure(self, size: tuple, options: dict, warm: bool = False,
                     on_progress=None, idle: bool = False,
                     exact: bool = True) -> bool:
        """Prepare for a dream of `size` (height, width) with full settings `options`;
        returns once done (True) or stopped or failed (False: the dream then compiles what
        it needs itself). A running preparation of the same dream is joined, any other
        stopped first. `warm`: also run the steps once; `idle`: give way to any dream."""
        if not self.applies():
            return True
        key = self.key(size, options)
        while True:
            if idle and self.claims:
                return False
            if key in self.compiled and (not warm or key in self.warmed):
                return True
            job = self.job
            if job is not None and not job.finished and job.key == key and not job.stopped:
                if not warm:
                    job.warm = False  # a dream waits: its own first steps warm up
                if on_progress is not None:
                    job.on_progress = on_progress
                await job.ended.promise
                return key in self.compiled
            if job is not None and not job.finished:
                await self.halt()
                continue  # someone else may have started meanwhile: look again
            if not idle and self.dreamer.cancelled:
                return False  # Stop pressed while the last one gave way
            job = self.start(key, size, options, warm, on_progress, exact)
            await job.ended.promise
            return job.outcome == "done"

    def start(self, key: tuple, size: tuple, options: dict, warm: bool,
              on_progress, exact: bool = True) -> Job:
        """A new job, running from now on (in its own task)."""
        job = Job(key, size, options, warm, on_progress, None, self.js.deferred(), exact)

        def settled(done: int, total: int, slices: int) -> None:
            job.settling = int(slices)
            self.report(job, "running")
            if job.on_progress is not None and total:
                job.on_progress(job.fraction(done / total))

        job.proxy = create_proxy(settled)  # lives as long as the job (see run)
        job.handle = self.js.newJob(job.proxy)
        self.job = job
        asyncio.create_task(self.run(job))
        return job

    # --- the work -------------------------------------------------------------------------

    async def run(self, job: Job) -> None:
        """Compile (and warm) `job`'s dream; never raises: a failure only means the dream
        will compile for itself."""
        self.report(job, "running")
        try:
            await self.compile(job)
            if not job.stopped:
                self.compiled.add(job.key)
            if job.warm and not job.stopped and job.new_programs:
                await self.warm_up(job)
            if not job.stopped and job.warm:
                self.warmed.add(job.key)
            job.outcome = "stopped" if job.stopped else "done"
        except Exception as error:  # noqa: BLE001 (the dream meets any real problem itself)
            fault = self.boot.takeFault()
            job.error = str(error) if is_none(fault) else str(fault)
            job.outcome = "failed"
            window.console.warn("dreamframe: preparing the GPU failed: " + job.error)
        job.finished = True
        self.report(job, job.outcome)
        if job.on_progress is not None and job.outcome == "done":
            job.on_progress(1.0)
        self.js.dropJob(job.handle)
        destroy = getattr(job.proxy, "destroy", None)  # Pyodide's proxies; MicroPython has none
        if destroy is not None:
            destroy()
        job.ended.resolve(job.outcome)
        if job.outcome != "stopped" and not self.first_seen:
            self.first_seen = True
            if self.on_first is not None:
                self.on_first(job)

    def note(self, job: Job, kind: str, began: float) -> None:
        """Keep the longest synchronous pass of each kind (reported, for the record)."""
        job.longest[kind] = max(job.longest[kind], float(window.performance.now() - began))

    def steps(self, job: Job, image) -> tuple:
        """The engine's dream loop for `job`, one step per octave."""
        objective, schedule, transforms, seed = self.dreamer.plan(job.options)
        objective.check(self.dreamer.outputs)
        once = Schedule(schedule.octaves, schedule.octave_scale, 1, schedule.step_size,
                        schedule.min_side)
        return dream_steps(self.dreamer.ops, image, objective, once, transforms, seed), once

    def blank(self, job: Job):
        """A grey image of the job's size, computed on the backend (in compile-only mode, an
        image of nothing in particular, the same program built)."""
        ops = self.dreamer.ops
        height, width = job.size
        image = ops.tidy(lambda: [ops.scale(ops.tf.zeros(to_js([1, height, width, 3])), 1.0)])[0]
        self.dreamer.check()
        return image

    def around(self, job: Job, info):
        """What a dream does around each step besides the step itself, for `info`'s octave:
        the rolls of all its steps (each shift its own programs on WebGL without shape
        uniforms; the image there, the gradient back) and the preview's pixels (returned,
        for the caller to read or dispose)."""
        ops = self.dreamer.ops
        shifts = job.shifts[info.octave]
        for dy, dx in shifts if job.exact else shifts[:1]:
            made = ops.tidy(lambda dy=dy, dx=dx: [ops.roll(info.image, dy, dx),
                                                  ops.roll(info.gradient, -dy, -dx)])
            for tensor in made:
                ops.dispose(tensor)
        return self.images.previewPixels(self.boot.tf, info.image)

    async def compile(self, job: Job) -> None:
        """Step 1: every octave's step in compile-only mode, its programs then settled."""
        _, schedule, transforms, seed = self.dreamer.plan(job.options)
        sizes = schedule.octave_sizes(job.size[0], job.size[1])
        job.passes = len(sizes)
        job.shifts = dream_shifts(sizes, schedule.steps, transforms, seed)
        image = steps = None
        tf = self.boot.tf
        try:
            for _ in range(job.passes):
                if job.stopped:
                    return
                began = window.performance.now()
                self.js.beginCompileOnly(tf)
                try:
                    if steps is None:  # the first pass makes the image too
                        image = self.blank(job)
                        steps = self.steps(job, image)[0]
                    # synchronous: nothing else runs meanwhile
                    self.dreamer.ops.dispose(self.around(job, next(steps)))
                finally:
                    batch = self.js.endCompileOnly(tf)
                self.note(job, "compile", began)
                self.dreamer.check()
                job.new_programs += int(self.js.batchSize(batch))
                job.slices += 1
                await self.boot.yieldToBrowser()
                job.slices += int(await self.js.settle(tf, batch, job.handle))
                job.settling = 0
                job.units_done += 1
                self.report(job, "running")
                if job.on_progress is not None:
                    job.on_progress(job.fraction())
        finally:
            if steps is not None:
                steps.close()
            if image is not None:
                self.dreamer.ops.dispose(image)

    async def warm_up(self, job: Job) -> None:
        """Step 2: the same steps for real, each awaited without blocking (its loss read)."""
        image = self.blank(job)
        steps, _ = self.steps(job, image)
        ops = self.dreamer.ops
        try:
            while job.warm and not job.stopped:  # a dream that joins turns warming off
                began = window.performance.now()
                try:
                    info = next(steps)  # one step: the programs exist, the draws queue
                except StopIteration:
                    break
                pixels = self.around(job, info)
                self.note(job, "warm", began)
                self.dreamer.check()
                job.slices += 1
                try:
                    await ops.read(info.loss)
                    await ops.read(pixels)  # as the preview does
                finally:
                    ops.dispose(pixels)
                await self.boot.yieldToBrowser()
                job.units_done += 1
                self.report(job, "running")
                if job.on_progress is not None:
                    job.on_progress(job.fraction())
        finally:
            steps.close()
            ops.dispose(image)
