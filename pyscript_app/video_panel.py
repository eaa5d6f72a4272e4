"""Dream a video in the page: a file the visitor drops in is read, dreamt frame by frame and
encoded as it goes, all on the device (web/js/media.js: mediabunny over WebCodecs; the
engine's flow-coherent dreamer, dreamengine/video.py).

Choosing a file only opens it: what it is, how many frames, the size it will be dreamt at
and about how long that takes here are said before anything starts, and a video the page
cannot take is refused with a sentence then. Every frame is shown as it is made (the source
left of the slider, the dream right of it); Stop keeps the frames made so far and finishes
the video from them. Frames are encoded as they come and dropped, so memory stays flat over
the whole video.
"""

import pagelogic
from dom import el, listen, show_status, spawn
from pyscript import window
from pyscript.ffi import is_none, to_js


class VideoPanel:
    """The chosen video, the running video dream, and the last video made."""

    def __init__(self, app, services) -> None:
        self.app = app
        self.boot, self.tf, self.images, self.dreamer = services
        self.file = None  # the chosen video (a File or Blob) and its name
        self.name = "video"
        self.video = None  # the last dreamt video, a Blob
        self.extension = "mp4"

    def wire(self) -> None:
        """Connect the video's file input and buttons."""
        listen(el("video-file"), "change", lambda event: self.on_file(event.target))
        listen(el("video-start"), "click", lambda event: spawn(self.run()))
        listen(el("video-download"), "click", lambda event: self.download())
        self.lock(False)  # the camera needs no photo: it can start at once

    def lock(self, running: bool) -> None:
        """While something runs, no new video and no second start; the camera likewise."""
        el("video-start").disabled = running or self.file is None
        el("video-file").disabled = running
        el("camera-start").disabled = running

    def on_file(self, field) -> None:
        """The file input's choice (cleared, so that choosing it again still fires)."""
        if field.files.length:
            spawn(self.app.load_blob(field.files.item(0), field.files.item(0).name))
        field.value = ""

    async def open(self, blob, options: dict) -> tuple:
        """(media.openVideo's video at the settings' size, None) or (None, why not)."""
        media = await self.boot.loadMedia()
        try:
            return await media.openVideo(blob, to_js({"maxSide": options["video_max_side"]})), None
        except Exception as error:  # openVideo says why in words a visitor can read
            return None, "could not open that video: " + pagelogic.message_of(error)

    def plan(self, opened, options: dict) -> tuple:
        """(can it be dreamt, the sentence saying what will happen or why not)."""
        return pagelogic.video_plan(
            self.name, int(opened.frameCount), float(opened.duration), float(opened.fps),
            (int(opened.width), int(opened.height)),
            (options["octaves"] * options["steps"], options["video_steps"]), self.dreamer.pace)

    async def choose(self, blob, name):
        """Take a video (file input, drop, an embedding page's request): open it to say what
        it is, dream nothing yet. None, or why it cannot be dreamt (also shown)."""
        self.name = pagelogic.file_stem(name)
        opened, why = await self.open(blob, self.app.settings())
        text = why
        if opened is not None:
            ok, text = self.plan(opened, self.app.settings())
            opened.close()
            why = None if ok else text
        self.file = blob if why is None else None
        el("video-start").disabled = why is not None
        el("video-note").textContent = "" if opened is None else text
        if why is None:
            show_status("Video loaded. Press Dream the video.")
        else:
            show_status(why[0].upper() + why[1:] + ("" if why.endswith(".") else "."), True)
        return why

    async def run(self, claimed: bool = False, options=None, retry=None,
                  notice=None) -> None:
        """Dream the chosen video with the current settings; replies like a zoom's."""
        if self.file is None:
            show_status("Choose a video first.", True)
            return
        app = self.app
        started = window.performance.now()
        made = {"frames": 0, "first_ms": 0.0, "truncated": False, "kind": "", "why": ""}

        async def body(options: dict) -> int:
            opened, why = await self.open(self.file, options)
            if opened is None:
                raise ValueError(why)
            ok, text = self.plan(opened, options)
            if not ok:
                opened.close()
                raise ValueError(text)
            media = await self.boot.loadMedia()
            writer = await media.createVideoWriter(to_js({
                "width": opened.width, "height": opened.height, "fps": opened.fps,
                "audioFrom": opened}))
            frames = opened.frames()
            total = max(1, int(opened.frameCount))
            el("video-download").disabled = True
            app.announce("Dreaming the video", retry, notice)
            timing = {"times": [], "durations": []}

            async def next_frame():
                step = await frames.next()
                if step.done:
                    return None
                frame = step.value
                timing["times"].append(float(frame.timestamp))
                timing["durations"].append(float(frame.duration))
                self.images.drawBitmap(frame.canvas, el("before"))
                return self.images.toTensor(self.tf, frame.canvas)

            async def on_frame(index: int, dreamt) -> None:
                await self.images.drawTensor(self.tf, dreamt, el("after"), self.boot.read)
                await writer.add(el("after"), timing["times"][index],
                                 timing["durations"][index])
                now = window.performance.now()
                if index == 0:
                    made["first_ms"] = now - started
                done = index + 1
                left = pagelogic.video_eta(done, total, made["first_ms"],
                                           now - started - made["first_ms"])
                el("progress").value = min(1.0, done / total)
                el("progress-text").textContent = (
                    "Frame " + str(done) + "/" + str(total) + " · about "
                    + pagelogic.duration_text(left) + " left")
                app.reply({"type": "progress", "frame": done, "frames": total, "done": done,
                           "total": total})

            try:
                return await self.dreamer.video(options, next_frame, on_frame,
                                                app.guide_tensor())
            finally:  # Stop or a failure: the video of the frames made
                made["frames"] = int(writer.frames)
                made["truncated"] = bool(opened.truncated)
                if made["frames"]:
                    self.video = await writer.finish()
                    self.extension = str(writer.extension)
                    made["kind"] = self.extension
                    made["why"] = "" if is_none(writer.why) else " (" + str(writer.why) + ")"
                    el("video-download").disabled = False
                else:
                    await writer.cancel()
                # A generator left early (Stop) is ended, so that the decoder frees its frames
                # ("return" is a Python keyword, hence getattr).
                await getattr(frames, "return")()
                opened.close()

        ran, options, count = await app.drive(body, self.run_again, "video dream", options,
                                              claimed, needs_photo=False)
        if not ran:
            return
        stopped = made["frames"] < int(count or 0) or self.dreamer.cancelled
        seconds = (window.performance.now() - started) / 1000.0
        text = pagelogic.video_done_text(made["frames"], seconds, made["kind"], made["why"],
                                         stopped, made["truncated"])
        show_status(text)
        el("progress-text").textContent = text
        app.reply({"type": "stopped" if stopped else "done", "frames": made["frames"],
                   "video": self.video, "format": made["kind"],
                   "truncated": made["truncated"]})

    async def run_again(self, options: dict, retry, notice) -> None:
        """The video once more after a failure (runs.Runs.handle_failure's `again`)."""
        await self.run(True, options, retry, notice)

    def download(self) -> None:
        """Save the last video."""
        if self.video is not None:
            self.images.save(self.video, self.name + "-dream." + self.extension)
