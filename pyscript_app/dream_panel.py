"""The dream itself on the page: Dream and Stop, the GPU's preparation before it
(prepare.py), progress with time left, the result (compare slider, download, dream again).
"""

import pagelogic
from dom import el, listen, show_status, spawn
from prepare import NOMINAL_SIZE
from pyscript import window
from pyscript.ffi import to_js


class DreamPanel:
    """Runs dreams of the App's photo and holds the last result (a tensor, or None)."""

    def __init__(self, app, services: tuple) -> None:
        self.app = app
        self.boot, self.tf, self.images, self.dreamer = services
        self.result = None

    def wire(self) -> None:
        """Connect the dream's buttons and the compare slider."""
        listen(el("start"), "click", lambda event: spawn(self.run()))
        listen(el("stop"), "click", lambda event: self.stop())
        listen(el("download"), "click", lambda event: spawn(self.download()))
        listen(el("again"), "click", lambda event: spawn(self.dream_again()))
        listen(el("compare-slider"), "input", lambda event: self.reveal(event.target.value))

    # --- preparing the GPU (prepare.py) -------------------------------------------------

    def prepare_idle(self) -> None:
        """Prepare the GPU, in the background, for the dream the page would start now: this
        photo (or, before any, a small default one) with the current settings."""
        app = self.app
        photo = app.photo()
        size = NOMINAL_SIZE if photo is None else app.photo_size()
        try:
            options = app.settings()
        except ValueError:  # settings no dream could use (every weight 0): nothing to prepare
            return
        self.dreamer.preparer.idle(size, options, photo is not None)

    def prepared(self, job) -> None:
        """The first preparation is over: tell the embedding page and scripts, once."""
        boot = self.boot
        count = int(boot.prepare.programCount(boot.tf))
        boot.embed.post(to_js({"type": "prepared", "programs": count}))
        window.dreamframe.prepared = count  # for scripts that arrive after the event
        window.dispatchEvent(window.CustomEvent.new("dreamframe:prepared"))

    async def prepare_for(self, size: tuple, options: dict) -> None:
        """Before a dream: the GPU programs it still lacks, with progress shown. The page
        answers meanwhile (the work comes in slices) and Stop stops it."""
        preparer = self.dreamer.preparer
        if preparer.ready_for(size, options):
            return
        show_status("Preparing the GPU…")
        self.progress(0.0, pagelogic.preparing_text(0.0))
        await preparer.ensure(size, options, False,
                              lambda f: self.progress(f, pagelogic.preparing_text(f)))
        el("progress").value = 0

    # --- dreaming -----------------------------------------------------------------------

    def progress(self, fraction: float, text: str) -> None:
        """The progress bar and the line under it."""
        el("progress").value = fraction
        el("progress-text").textContent = text

    async def run(self, options: dict | None = None, retry: str | None = None,
                  notice: str | None = None, claimed: bool = False) -> None:
        """Dream the photo with the current settings (or `options`), previewing every step.

        `retry` says how this run differs from one that ran out of memory, `notice` why it
        runs again (runs.py); `done` or `stopped` reaches the embedding page from here.
        """
        app = self.app
        dreamer = self.dreamer
        started = window.performance.now()
        dreaming = [started]  # when the steps began, after any preparation (for the ETA)
        after = el("after")

        async def body(options: dict):
            height, width = app.photo_size()
            sizes = dreamer.plan(options)[1].octave_sizes(height, width)

            async def on_step(info) -> None:
                await self.images.drawTensor(self.tf, info.image, after, self.boot.read)
                if info.done == 1:
                    window.performance.mark("dreamframe:first-frame")
                left = pagelogic.eta_seconds(sizes, info.steps, info.done,
                                             window.performance.now() - dreaming[0])
                self.progress(info.done / info.total, pagelogic.progress_text(
                    info.octave, info.octaves, info.step, info.steps, left))
                app.reply({"type": "progress", "done": info.done, "total": info.total,
                           "octave": info.octave, "step": info.step})

            el("progress").value = 0
            dreamer.cancelled = False
            dreamer.preparer.claims += 1  # no background preparation until it is over
            try:
                await self.prepare_for((height, width), options)
                app.announce("Dreaming", retry, notice)
                dreaming[0] = window.performance.now()
                if dreamer.cancelled:  # Stop while preparing: no dream
                    return None
                return await dreamer.run(app.photo(), options, on_step, app.guide_tensor())
            finally:
                dreamer.preparer.claims -= 1

        async def again(options: dict, retry: str | None, notice: str | None) -> None:
            await self.run(options, retry, notice, True)

        ran, options, result = await app.drive(body, again, "dream", options, claimed)
        if not ran:
            return
        if result is None:
            show_status("Stopped. Press Dream to start again.")
            el("progress-text").textContent = "Stopped."
            app.reply({"type": "stopped"})
            return
        self.forget()
        self.result = result
        await self.images.drawTensor(self.tf, result, after)
        seconds = (window.performance.now() - started) / 1000.0
        show_status(pagelogic.done_text(seconds, retry, notice, app.backend_label()))
        el("progress-text").textContent = ""  # one line says it all: the status
        el("note").textContent = pagelogic.dream_note((int(after.width), int(after.height)))
        self.show_result(True)
        png = await self.images.toPng(after)
        height, width = app.photo_size()
        app.reply({"type": "done", "width": width, "height": height, "image": png})
        app.dream_over()

    def stop(self) -> None:
        """Stop the run after its current step (or its preparation)."""
        app = self.app
        if app.running():
            self.dreamer.cancel()
            self.dreamer.preparer.stop_running()
            show_status("Stopping after this step…")

    # --- the result ---------------------------------------------------------------------

    def forget(self) -> None:
        """No result (a new photo, another backend)."""
        self.app.free(self.result)
        self.result = None
        self.show_result(False)

    def show_result(self, shown: bool) -> None:
        """The result's buttons and the compare slider, on with a finished dream."""
        for key in ("download", "again", "compare-slider"):
            el(key).disabled = not shown
        if shown:
            el("compare-slider").value = "100"
            self.reveal(100)

    def reveal(self, percent: int | str) -> None:
        """How much of the dream the compare slider shows over the photo."""
        el("compare").style.setProperty("--reveal", str(percent) + "%")

    async def download(self) -> None:
        """Save the dream as a PNG at the photo's full (possibly scaled) resolution."""
        if self.result is None:
            return
        app = self.app
        await self.images.drawTensor(self.tf, self.result, el("after"))
        blob = await self.images.toPng(el("after"))
        self.images.save(blob, app.photo_name() + "-dream.png")

    async def dream_again(self) -> None:
        """Use the result as the new photo and dream on it."""
        if self.result is None or self.app.running():
            return
        again = self.result
        self.result = None  # now the photo's
        await self.app.replace_photo(again)
        await self.run()
