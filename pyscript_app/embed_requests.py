"""Requests from the page that embeds Dreamframe (web/js/embed.js carries the messages).

Each `dream`, `zoom` or `video` request gets exactly one reply (`done`, `stopped` or `error`, with
the page's own words), or, when another request or a dream is under way, `busy` at once:
nothing is queued or dropped, and nothing replaces the photo under a running dream. The
request is claimed before its image is decoded, so two requests posted back to back cannot
both start. Replies carry the request's `id` (App.reply).
"""

import json

import settings as settings_mod
from dom import spawn
from pyscript.ffi import is_none


class EmbedRequests:
    """Serves the embedding page's requests, one at a time."""

    def __init__(self, app) -> None:
        self.app = app

    def on_message(self, kind: str, settings_json: str, image, request, guide=None) -> None:
        """A well-formed message from the embedding page (embed.js checked its shape)."""
        app = self.app
        request = None if is_none(request) else request
        if kind == "stop":
            app.stop()
            return
        if app.running() or app.serving_request():
            message = {"type": "busy", "message": "a dream is running: send {type: 'stop'} "
                       "or wait for its reply"}
            if request is not None:
                message["id"] = request
            app.post(message)
            return
        app.claim(request)  # now, before decoding: a second message is told "busy"
        spawn(self.serve(kind, settings_json, image, guide))

    async def serve(self, kind: str, settings_json: str, image, guide) -> None:
        """Apply the request's model and settings, take its image and guide, dream."""
        app = self.app
        try:
            try:
                raw = json.loads(settings_json)
            except ValueError:
                raw = {}
            if not await self.use_model(raw):
                return
            cleaned = settings_mod.clean(raw, app.layers())
            if cleaned:
                app.use_settings(cleaned)
            if kind == "video":
                await self.dream_video(image)
                return
            if not is_none(image):
                why = await app.load_photo(image, "embedded")
                if why is not None:
                    app.reply({"type": "error", "message": "could not open that image: " + why})
                    return
            if guide is not None and not is_none(guide):
                why = await app.load_guide(guide)
                if why is not None:
                    app.reply({"type": "error", "message": "could not use that guide: " + why})
                    return
            if app.photo() is None:
                app.reply({"type": "error", "message": "no image to dream on: send one"})
                return
            await app.start_run(kind, claimed=True)
        finally:
            app.release()

    async def dream_video(self, video) -> None:
        """A video request: its `video` Blob taken like a dropped file, then dreamt."""
        app = self.app
        if is_none(video):
            app.reply({"type": "error", "message": "no video to dream: send one as `video`"})
            return
        why = await app.choose_video(video, "embedded")
        if why is not None:
            app.reply({"type": "error", "message": why})
            return
        await app.start_run("video", claimed=True)

    async def use_model(self, raw) -> bool:
        """Switch to the request's `settings.model` first; False (and replied) if it fails."""
        app = self.app
        model = raw.get("model") if isinstance(raw, dict) else None
        if not isinstance(model, str) or model == app.model():
            return True
        known = sorted(settings_mod.presets.MODEL_NAMES)
        if model not in known:
            app.reply({"type": "error", "message": "unknown model " + model
                       + "; valid models: " + ", ".join(known)})
            return False
        if not await app.switch_model(model, claimed=True):
            app.reply({"type": "error", "message": "could not load the model " + model})
            return False
        return True
