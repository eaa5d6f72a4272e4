"""Dream zoom in the page: every frame previewed as it is made and encoded into a video on
the spot (web/js/video.js: MP4/H.264 or WebM/VP9 through WebCodecs, else an animated GIF).

Stop keeps the frames made so far: the video is finished from them. Frames are encoded as
they come and dropped, so memory stays flat however many there are.
"""

import pagelogic
from dom import el, listen, show_status, spawn
from pyscript import window
from pyscript.ffi import is_none

from dreamengine.presets import ZOOM


class ZoomPanel:
    """The zoom controls, the running zoom, and the last video made."""

    def __init__(self, app, services: tuple) -> None:
        self.app = app
        self.boot, self.tf, self.images, self.dreamer = services
        self.video = None  # the last video, a Blob
        self.extension = "mp4"
        self.why = ""  # why the last video is a GIF, not an MP4 or WebM
        self.frames = 0

    def wire(self) -> None:
        """Connect the zoom's buttons."""
        listen(el("zoom-start"), "click", lambda event: spawn(self.run()))
        listen(el("zoom-download"), "click", lambda event: self.download())

    async def run(self, claimed: bool = False, options: dict | None = None,
                  retry: str | None = None, notice: str | None = None) -> None:
        """Make a zoom video from the current photo with the current settings.

        Exactly one of `done` (carrying the video), `stopped` (also with the video of the
        frames made) or `error` reaches an embedding page. A failure goes through the page's
        one policy (runs.py): another backend, smaller tiles, and again; `retry` and
        `notice` say why this run is a second one.
        """
        app = self.app
        started = window.performance.now()
        after = el("after")

        async def body(options: dict) -> int:
            height, width = app.photo_size()
            video = await self.boot.loadVideo()
            recorder = self.boot.guard(await video.createRecorder(width, height, ZOOM["fps"]))
            el("zoom-download").disabled = True
            app.announce("Making the zoom video", retry, notice)

            async def on_frame(frame) -> None:
                await self.images.drawTensor(self.tf, frame.image, after, self.boot.read)
                recorder.add(after)
                done = frame.index + 1
                left = pagelogic.eta_seconds([(1, 1)], frame.frames, done,
                                             window.performance.now() - started)
                el("progress").value = done / frame.frames
                el("progress-text").textContent = (
                    "Frame " + str(done) + "/" + str(frame.frames) + " · about "
                    + str(int(left + 0.5)) + " s left")
                app.reply({"type": "progress", "frame": done, "frames": frame.frames,
                           "done": done, "total": frame.frames})

            try:
                return await self.dreamer.zoom(app.photo(), options, on_frame, app.guide_tensor())
            finally:  # Stop or a failure: the video of the frames made
                self.frames = int(recorder.frames)
                if self.frames:
                    self.video = await recorder.finish()
                    self.extension = str(recorder.extension)
                    why = recorder.why
                    self.why = "" if is_none(why) else " (" + str(why) + ")"
                    el("zoom-download").disabled = False

        ran, options, made = await app.drive(body, self.run_again, "zoom video", options,
                                             claimed)
        if not ran:
            return
        height, width = app.photo_size()
        stopped = made < int(options["zoom_frames"])
        seconds = int((window.performance.now() - started) / 1000.0 + 0.5)
        text = ("Stopped after " if stopped else "Done: ") + str(self.frames) + " frames in " + (
            str(seconds) + " s, as " + self.extension.upper() + self.why
            + ". Download the video below.")
        show_status(text)
        el("progress-text").textContent = text
        app.reply({"type": "stopped" if stopped else "done", "frames": self.frames,
                   "width": width, "height": height, "video": self.video,
                   "format": self.extension})

    async def run_again(self, options: dict, retry: str | None, notice: str | None) -> None:
        """The zoom once more after a failure (runs.Runs.handle_failure's `again`)."""
        await self.run(True, options, retry, notice)

    def download(self) -> None:
        """Save the last video."""
        if self.video is not None:
            self.images.save(self.video, self.app.photo_name() + "-zoom." + self.extension)


