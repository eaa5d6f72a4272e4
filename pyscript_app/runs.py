"""The one run driver: every run (a dream, a zoom video, for the visitor or an embedding
page) goes through the same skeleton and the same failure policy.

The skeleton: refuse while another run or request holds the page, pause the channel
explorer (its thumbnails share the dreamer), lock the controls, run, unlock. The policy,
from pagelogic.classify: a backend that computes nothing or a lost GPU moves the page to
the next backend; running out of memory retries with smaller tiles, then at half the
resolution; anything else is said as it is. Either way the page stays usable, and exactly
one of `done`, `stopped` or `error` reaches the embedding page (the run itself sends the
first two, this module the third).
"""

import pagelogic
from dom import el, show_status
from pyscript.ffi import to_js


class Runs:
    """Starts runs on `app` and carries out the failure policy."""

    def __init__(self, app, services: tuple) -> None:
        self.app = app
        self.boot, self.tf, self.images, self.dreamer = services
        self.needs_photo = True  # whether the run under way dreams the photo

    async def drive(self, body, again, what: str, options: dict | None = None,
                    claimed: bool = False, needs_photo: bool = True) -> tuple:
        """(True, options, outcome) when `body(options)` ran to its end, else (False, ...).

        `body` is a coroutine function doing the run with full settings; `again(options,
        retry, notice)` starts the same run once more after a failure; `what` names it for
        the visitor ("dream", "zoom video"). `claimed`: run for the embedding page's request
        being served (or a retry), which the page's own buttons may not start meanwhile.
        `needs_photo`: False for a video or the camera, which bring their own frames.
        """
        app = self.app
        if not app.can_start(claimed, needs_photo):
            return False, options, None
        await app.pause_explorer()
        options = options or app.settings()
        self.needs_photo = needs_photo
        app.set_running(True)
        failure = None
        outcome = None
        try:
            outcome = await body(options)
        except Exception as error:
            failure = error
        finally:
            app.set_running(False)
        if failure is not None:
            await self.handle_failure(failure, options, again, what)
            return False, options, None
        return True, options, outcome

    def announce(self, doing: str, retry: str | None, notice: str | None) -> None:
        """The status line as a run begins: `doing` ("Dreaming"), or why it runs again."""
        if notice is not None:
            show_status(notice + " " + doing + " again…", True)
        elif retry is not None:
            show_status("Out of memory on " + self.app.backend_label() + ": "
                        + doing.lower() + " again " + retry + "…", True)
        else:
            show_status(doing + "…")

    async def handle_failure(self, error: Exception, options: dict, again, what: str) -> None:
        """Say what went wrong, move on to something that works, and retry if that helps."""
        app = self.app
        kind = pagelogic.classify(error, bool(self.boot.memoryFull()))
        message = pagelogic.message_of(error)
        if kind == "broken backend":
            await self.replace_broken_backend(message, options, again)
        elif kind == "gpu lost":
            if not await self.recover(False):
                return
            why = "The GPU stopped working (" + message + "). Switched to " + app.backend_label()
            show_status(why + ": start again to carry on.", True)
            app.reply({"type": "error", "message": why, "backend": str(self.boot.backend.name)})
        elif kind == "out of memory":
            await self.retry_smaller(options, again)
        else:
            show_status("The " + what + " failed: " + message + ".", True)
            app.reply({"type": "error", "message": "the " + what + " failed: " + message})

    async def retry_smaller(self, options: dict, again) -> None:
        """After running out of memory: a fresh backend, then smaller tiles or half the size."""
        app = self.app
        backend = app.backend_label()
        if not await self.recover(True):  # a fresh instance: an overflowed heap is unusable
            return
        if not self.needs_photo:  # a video or the camera: smaller frames
            options = dict(options, video_max_side=max(64, options["video_max_side"] // 2),
                           camera_max_side=max(96, options["camera_max_side"] // 2))
            app.reply({"type": "progress", "done": 0, "total": 0, "notice": "out of memory on "
                       + backend + ": dreaming again at half the size"})
            await again(options, "at half the size", None)
            return
        height, width = app.photo_size()
        attempt = pagelogic.after_out_of_memory(options, height, width)
        if attempt is None:
            why = "out of memory even for a small image on " + backend
            show_status(why[0].upper() + why[1:] + ".", True)
            app.reply({"type": "error", "message": why})
            return
        options, halve = attempt
        if halve:
            await self.halve_photo()
            how = "at half the resolution"
        else:
            app.keep_setting("tile_size", options["tile_size"])  # for later dreams too
            how = "with tiles of " + str(options["tile_size"]) + " px"
        app.reply({"type": "progress", "done": 0, "total": 0,
                   "notice": "out of memory on " + backend + ": dreaming again " + how})
        await again(options, how, None)

    async def halve_photo(self) -> None:
        """Continue at half the resolution (the last resort when memory runs out)."""
        height, width = self.app.photo_size()
        ops = self.dreamer.ops
        photo = self.app.photo()
        smaller = ops.tidy(lambda: [ops.resize(photo, height // 2, width // 2)])[0]
        await self.app.replace_photo(smaller)
        await self.images.drawTensor(self.tf, smaller, el("after"))

    async def replace_broken_backend(self, reason: str, options: dict, again) -> None:
        """The backend computed nothing (render.BrokenBackendError): say so, move on, run
        again. The broken backend is remembered for the rest of the visit (backends.js)."""
        app = self.app
        text = "The " + app.backend_label() + " backend " + reason + "."
        if not await self.recover(False, True):
            return
        notice = text + " Switched to " + app.backend_label() + "."
        app.reply({"type": "progress", "done": 0, "total": 0, "notice": notice,
                   "backend": str(self.boot.backend.name)})
        await again(options, None, notice)

    async def recover(self, reset: bool, broken: bool = False) -> bool:
        """Switch (or restart) the backend, reload the model, rebuild the tensors.

        False, with a message, when no backend is left: then only a reload can help.
        """
        app = self.app
        try:
            await self.boot.recover(to_js({"reset": reset, "broken": broken}))
        except Exception as error:
            show_status("Dreaming stopped working here (" + pagelogic.message_of(error)
                        + "). Reload the page to start again.", True)
            app.reply({"type": "error", "message": "no backend is left to dream on"})
            return False
        app.after_backend_change()
        return True
