"""The camera, live: each frame dreamt as it comes with the same flow-coherent loop as a
video (dreamengine/video.py), at a small size so it keeps up, shown with the frames per
second; Record makes a video of what is shown (web/js/media.js), Stop keeps it.

The camera (web/js/camera.js) is released when the visitor stops, when the page is hidden
(another tab, a locked phone) and when it is left (camera.js watches for those itself); a
refused permission or a missing camera is said in a sentence (pagelogic.camera_problem)
and the page carries on.
"""

import pagelogic
from dom import el, listen, show_status, spawn
from pyscript import window
from pyscript.ffi import is_none, to_js


class CameraPanel:
    """The camera while it is open, the recording, and the last video recorded."""

    def __init__(self, app, services) -> None:
        self.app = app
        self.boot, self.tf, self.images, self.dreamer = services
        self.camera = None  # camera.js's open camera while dreaming it
        self.writer = None  # the recording under way
        self.video = None  # the last recording, a Blob
        self.extension = "mp4"
        self.frames = 0

    def wire(self) -> None:
        """The camera's buttons (hiding or leaving the page lets the camera go: camera.js;
        the loop then ends at the next frame)."""
        listen(el("camera-start"), "click", lambda event: spawn(self.run()))
        listen(el("camera-record"), "click", lambda event: spawn(self.toggle_record()))
        listen(el("camera-download"), "click", lambda event: self.download())

    def release(self) -> None:
        """Let the camera go (its light goes out)."""
        if self.camera is not None:
            self.camera.stop()
            self.camera = None

    async def run(self, claimed: bool = False, options=None, retry=None,
                  notice=None) -> None:
        """Open the camera and dream it until Stop."""
        app = self.app
        started = window.performance.now()
        shown = {"frames": 0, "since": started}

        async def body(options: dict) -> int:
            camera_js = await self.boot.loadCamera()
            try:
                self.camera = await camera_js.openCamera(to_js({
                    "maxSide": options["camera_max_side"]}))
            except Exception as error:
                raise ValueError(pagelogic.camera_problem(
                    pagelogic.error_name(error), pagelogic.message_of(error))) from None
            camera = self.camera
            el("camera-record").disabled = False
            app.announce("Dreaming the camera", retry, notice)

            async def next_frame():
                if self.camera is None or not camera.live:
                    return None
                canvas = camera.grab()
                self.images.drawBitmap(canvas, el("before"))
                return self.images.toTensor(self.tf, canvas)

            async def on_frame(index: int, dreamt) -> None:
                await self.images.drawTensor(self.tf, dreamt, el("after"), self.boot.read)
                now = window.performance.now()
                if self.writer is not None:
                    await self.writer.add(el("after"), (now - self.record_start) / 1000.0,
                                          (now - shown["since"]) / 1000.0)
                shown["frames"] += 1
                fps = 1000.0 * shown["frames"] / max(1.0, now - started)
                el("progress-text").textContent = (
                    "Live · " + str(int(fps * 10 + 0.5) / 10) + " frames a second"
                    + (" · recording" if self.writer is not None else ""))
                shown["since"] = now

            try:
                return await self.dreamer.video(options, next_frame, on_frame, None)
            finally:
                self.release()
                await self.finish_recording()
                el("camera-record").disabled = True

        ran, options, count = await app.drive(body, self.run_again, "camera dream", options,
                                              claimed, needs_photo=False)
        if ran:
            text = "Camera stopped after " + str(count) + " frames."
            if self.video is not None and self.frames:
                text += " Download the recording below."
            show_status(text)
            el("progress-text").textContent = text

    async def run_again(self, options: dict, retry, notice) -> None:
        """The camera once more after a failure (runs.Runs.handle_failure's `again`)."""
        await self.run(True, options, retry, notice)

    async def toggle_record(self) -> None:
        """Start recording what is shown, or finish the recording."""
        if self.writer is not None:
            await self.finish_recording()
            return
        if self.camera is None:
            return
        media = await self.boot.loadMedia()
        self.writer = await media.createVideoWriter(to_js({
            "width": self.camera.width, "height": self.camera.height, "fps": 10}))
        self.record_start = window.performance.now()
        el("camera-record").textContent = "Finish recording"

    async def finish_recording(self) -> None:
        """The recording so far into a video to download."""
        writer = self.writer
        if writer is None:
            return
        self.writer = None
        el("camera-record").textContent = "Record"
        self.frames = int(writer.frames)
        if self.frames:
            self.video = await writer.finish()
            self.extension = str(writer.extension)
            el("camera-download").disabled = False
            why = "" if is_none(writer.why) else " (" + str(writer.why) + ")"
            el("camera-note").textContent = ("Recorded " + str(self.frames) + " frames as "
                                             + self.extension.upper() + why + ".")
        else:
            await writer.cancel()

    def download(self) -> None:
        """Save the last recording."""
        if self.video is not None:
            self.images.save(self.video, "camera-dream." + self.extension)
