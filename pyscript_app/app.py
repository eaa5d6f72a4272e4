"""The page: bring a photo in, choose how to dream, watch it happen, take the result away.

The hub of the page's parts, each its own module: the settings controls (controls.py),
images in (photos.py), the run driver and failure policy (runs.py), the panels (model,
guide, zoom, video, camera, channel explorer) and the embedding page's requests
(embed_requests.py); what the page decides (what a failure means, what to say) is
pagelogic.py's, the DOM helpers dom.py's, and the browser-only chores (decoding, drawing,
PNGs, videos, postMessage) small JS helpers in web/js/. The parts talk to the App through
the methods below.
"""

import json

import limits
import pagelogic
import settings as settings_mod
from camera_panel import CameraPanel
from channel_panel import ChannelPanel
from controls import Controls
from dom import el, show_status
from dream_panel import DreamPanel
from embed_requests import EmbedRequests
from guide_panel import GuidePanel
from model_panel import ModelPanel
from photos import ImageLoader, load_sample, wire_photo_inputs
from pyscript import document, window
from pyscript.ffi import create_proxy, is_none, to_js
from runs import Runs
from video_panel import VideoPanel
from zoom_panel import ZoomPanel


class App:
    """The page's state: the photo, whether something runs, and the parts of the page."""

    def __init__(self, boot, dreamer) -> None:
        self.boot = boot
        self.tf = boot.tf  # handed to the image helpers, which run in JS
        self.images = boot.guard(boot.images)  # never throws into Python: web/js/guard.js
        self.dreamer = dreamer
        self.source = None  # [1, h, w, 3] tensor of the photo being dreamt
        self.name = "dream"
        self.busy = False  # a run is under way
        self.serving = False  # an embedding page's request is under way (decoding, running)
        self.request = None  # that request's id, if it gave one: replies carry it
        self.url = settings_mod.clean(json.loads(boot.query), dreamer.outputs)
        # Before anything can prepare (a sample from the URL is loaded during start-up).
        dreamer.preparer.enabled = self.url.get("prepare") != "off"
        # What every part shares: the boot object (web/js/boot.js), tf, the guarded image
        # helpers and the dreamer; the parts get them here, not from the App.
        services = (boot, self.tf, self.images, dreamer)
        self.controls = Controls(dreamer)
        self.loader = ImageLoader(services)
        self.runs = Runs(self, services)
        self.dream = DreamPanel(self, services)
        self.guide = GuidePanel(self, services)
        self.zoom = ZoomPanel(self, services)
        self.video = VideoPanel(self, services)
        self.camera = CameraPanel(self, services)
        self.channels = ChannelPanel(self, services)
        self.models = ModelPanel(self, services)
        self.requests = EmbedRequests(self)

    async def start(self) -> None:
        """Build the controls, apply URL settings, wire events, say we are ready."""
        await self.models.build()
        self.controls.build()
        self.controls.wire()
        self.controls.take(self.url)
        self.wire()
        self.show_backend()
        show_status("Ready. Choose a photo or a sample.")
        self.boot.embed.listen(create_proxy(self.requests.on_message))
        if "sample" in self.url:
            await load_sample(self.load_blob, self.url["sample"])
        self.post({"type": "ready"})
        window.dispatchEvent(window.CustomEvent.new("dreamframe:ready"))
        self.dreamer.preparer.on_first = self.dream.prepared
        if self.dreamer.preparer.applies():
            self.dream.prepare_idle()
        else:
            self.dream.prepared(None)  # wasm and cpu compile no programs (or prepare=off)
        mode = self.url.get("mode", "dream") if "autostart" in self.url else None
        if mode == "camera":
            await self.camera.run()
        elif mode is not None and self.source is not None:
            await self.start_run(mode)

    def wire(self) -> None:
        """Connect every control to its handler."""
        wire_photo_inputs(self.load_blob)
        self.dream.wire()
        self.guide.wire()
        for part in (self.zoom, self.video, self.camera, self.channels):
            part.wire()

    # --- what the parts ask of the page ------------------------------------------------

    def photo(self):
        """The photo's tensor, [1, h, w, 3] in the model's range (None before one)."""
        return self.source

    def photo_name(self) -> str:
        """The photo's file name without its extension, for the files made from it."""
        return self.name

    def guide_tensor(self):
        """The guide image's tensor, or None without a guide."""
        return self.guide.tensor

    def running(self) -> bool:
        """Whether a run (a dream, a zoom video) is under way."""
        return self.busy

    def serving_request(self) -> bool:
        """Whether an embedding page's request holds the page."""
        return self.serving

    async def start_run(self, kind: str = "dream", claimed: bool = False) -> None:
        """A dream of the photo, a zoom video of it, or the chosen video, dreamt."""
        await {"zoom": self.zoom, "video": self.video}.get(kind, self.dream).run(claimed=claimed)

    async def load_guide(self, blob) -> str | None:
        """Make `blob` the guide image; None, or why not (guide_panel.GuidePanel.load)."""
        return await self.guide.load(blob)

    def stop(self) -> None:
        """Stop the run under way after its step (dream_panel.DreamPanel.stop)."""
        self.dream.stop()

    def claim(self, request) -> None:
        """An embedding page's request holds the page from now (`request`: its id)."""
        self.serving = True
        self.request = request

    def release(self) -> None:
        """The request is served."""
        self.serving = False
        self.request = None

    def dream_over(self) -> None:
        """A dream finished: the channel explorer may carry on."""
        self.channels.resume()

    def can_start(self, claimed: bool = False, needs_photo: bool = True) -> bool:
        """A photo is there (unless not needed) and nothing else holds the page (`claimed`:
        for the request being served)."""
        photo = self.source is not None or not needs_photo
        return photo and not self.busy and (claimed or not self.serving)

    def settings(self) -> dict:
        """Full, clean settings from the controls."""
        return self.controls.read()

    def use_settings(self, cleaned: dict) -> None:
        """Clean settings from an embedding page's message, shown and kept."""
        self.controls.take(cleaned)

    def keep_setting(self, key: str, value) -> None:
        """One setting for every later dream (an out-of-memory retry's tile size)."""
        self.controls.keep(key, value)

    def layers(self) -> list:
        """The running model's layers (manifest outputs): they change with the model."""
        return self.dreamer.outputs

    def model(self) -> str:
        """The running model's name (manifest model.name)."""
        return self.dreamer.model

    async def switch_model(self, name: str, claimed: bool = False) -> bool:
        """Load model `name` (model_panel.ModelPanel.switch)."""
        return await self.models.switch(name, claimed)

    def model_changed(self) -> None:
        """Another model runs now: its sliders, presets and channels."""
        self.dreamer.reset()
        self.controls.rebuild()
        self.channels.reset()

    def choose_channel(self, layer: str, index: int) -> None:
        """Dream one channel from now on (the channel explorer's choice)."""
        self.controls.choose_channel(layer, index)

    async def drive(self, body, again, what: str, options: dict | None = None,
                    claimed: bool = False, needs_photo: bool = True) -> tuple:
        """A run through the one driver (runs.Runs.drive)."""
        return await self.runs.drive(body, again, what, options, claimed, needs_photo)

    def announce(self, doing: str, retry: str | None, notice: str | None) -> None:
        """The status line as a run begins (runs.Runs.announce)."""
        self.runs.announce(doing, retry, notice)

    def photo_size(self) -> tuple:
        """(height, width) of the photo."""
        return int(self.source.shape[1]), int(self.source.shape[2])

    async def pause_explorer(self) -> None:
        """The channel explorer's thumbnails share the dreamer: they wait for a run."""
        await self.channels.pause()

    def reply(self, message: dict) -> None:
        """Tell the embedding page, with the id of the request being served (if any)."""
        if self.request is not None:
            message["id"] = self.request
        self.post(message)

    def post(self, message: dict) -> None:
        """A message to the embedding page (web/js/embed.js)."""
        self.boot.embed.post(to_js(message))

    def free(self, *tensors) -> None:
        """Dispose tensors (None allowed); a failure to free is not worth a word."""
        for tensor in tensors:
            if tensor is not None:
                self.dreamer.ops.dispose(tensor)
        self.boot.takeFault()

    def backend_label(self) -> str:
        """The running backend's name for a visitor: WebGPU, WebGL, WebAssembly, CPU."""
        name = str(self.boot.backend.name)
        label = getattr(self.boot.labels, name, None)
        return name if label is None or is_none(label) else str(label)

    def show_backend(self) -> None:
        """The device line: what dreams here, and why when it is not a GPU."""
        backend = self.boot.backend
        measured = not is_none(getattr(backend, "measured", None))
        el("device").textContent = pagelogic.device_phrase(
            self.backend_label(), str(backend.device), bool(backend.gpu), bool(backend.software))
        el("backend").textContent = pagelogic.device_text(
            self.backend_label(), str(backend.device), bool(backend.gpu),
            bool(backend.software), str(backend.reason), measured)

    def set_running(self, running: bool) -> None:
        """Lock the controls while a run goes on; Stop only then."""
        self.busy = running
        for button in ("start", "zoom-start"):
            el(button).disabled = running or self.source is None
        self.video.lock(running)
        el("stop").disabled = not running
        self.controls.lock(running)

    # --- the photo ----------------------------------------------------------------------

    async def load_blob(self, blob, name) -> bool:
        """A photo or video from the visitor (file, drop, paste, sample); False if unusable."""
        if self.busy or self.serving:
            show_status("A dream is running: stop it first.", True)
            return False
        return await self.choose_video(blob, name) is None if str(blob.type).startswith(
            "video/") else await self.load_photo(blob, name) is None

    async def choose_video(self, blob, name):
        """Make `blob` the video to dream; None, or why not (video_panel.VideoPanel.choose)."""
        return await self.video.choose(blob, name)

    async def load_photo(self, blob, name) -> str | None:
        """Make a file or blob the photo to dream on; None, or why it cannot be used (also
        shown on the page): the same words reach an embedding page."""
        tensor, decoded, why = await self.loader.load(blob, limits.MAX_SIDE,
                                                     [el("before"), el("after")])
        if why is not None:
            show_status("Could not open that image: " + why + ".", True)
            return why
        self.free(self.source)
        self.source = tensor
        self.dream.forget()
        self.name = pagelogic.file_stem(name)
        gpu = self.backend_label() if limits.largest_photo(
            self.dreamer.max_elements()) is not None else None
        el("note").textContent = pagelogic.scaled_note(
            (decoded.originalWidth, decoded.originalHeight), (decoded.width, decoded.height),
            limits.MAX_SIDE, gpu)
        document.body.classList.add("has-image")
        el("drop-zone").classList.add("has-image")
        self.dream.prepare_idle()  # its own sizes, while the visitor looks at it
        self.set_running(False)
        show_status("Photo loaded. Press Dream.")
        return None

    def after_backend_change(self) -> None:
        """The tensors went with the old backend: remake the photo's and the guide's."""
        self.dreamer.reset()
        self.free(self.source)  # a tensor of the lost backend: freeing it does no harm
        self.source = self.images.toTensor(self.tf, el("before"))
        self.dream.forget()
        self.guide.rebuild()
        self.show_backend()

    async def replace_photo(self, tensor) -> None:
        """Dream on `tensor` from now on (the result to dream again on, or the photo at half
        its size after running out of memory)."""
        self.free(self.source)
        self.source = tensor
        await self.images.drawTensor(self.tf, tensor, el("before"))

    def prepare_idle(self) -> None:
        """Prepare the GPU in the background for the dream the page would start now."""
        self.dream.prepare_idle()
