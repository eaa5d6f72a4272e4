"""The page: bring a photo in, choose how to dream, watch it happen, take the result away.

DOM wiring. What the page decides (what a failure means, what to retry, what to say) is
pagelogic.py's; the panels are their own modules (model_panel, guide_panel, zoom_panel,
channel_panel), as are the embedding page's requests (embed_requests); the browser-only
chores (decoding images, drawing tensors, making PNGs and videos, carrying postMessages) are
small JS helpers in web/js/. Text reaches the DOM through `textContent` only, so nothing from
a URL, a file name or a message is ever parsed as HTML. Event handlers stay synchronous and
start tasks, which both MicroPython and Pyodide support.
"""

import asyncio
import json

import limits
import pagelogic
import settings as settings_mod
from channel_panel import ChannelPanel
from embed_requests import EmbedRequests
from guide_panel import GuidePanel
from model_panel import ModelPanel
from prepare import NOMINAL_SIZE
from pyscript import document, window
from pyscript.ffi import create_proxy, is_none, to_js
from zoom_panel import ZoomPanel

NUMBER_FIELDS = ("octaves", "steps", "step_size", "jitter", "seed", "guide_mix", "zoom_frames",
                 "zoom", "rotation", "zoom_steps")
# Settings without a control on the page: kept from the URL or the embedding page's message
# (and the tile size from an out-of-memory retry) for every later dream.
HIDDEN_FIELDS = ("norm", "octave_scale", "tile_size", "channel", "guide_layers")


def el(element_id: str) -> object:
    """A page element by id."""
    return document.getElementById(element_id)


class App:
    """The page's state: the input photo, the result, the controls, and the running dream.

    Decisions (what a failure means, what to retry, what to say) are pagelogic's; this class
    wires them to the DOM, the dreamer and the embedding page.
    """

    def __init__(self, boot: object, dreamer: object) -> None:
        self.boot = boot
        self.tf = boot.tf  # handed to the image helpers, which run in JS
        self.images = boot.guard(boot.images)  # never throws into Python: web/js/guard.js
        self.embed = boot.embed
        self.dreamer = dreamer
        self.source = None  # [1, h, w, 3] tensor of the photo being dreamt
        self.result = None  # the last finished dream, same shape
        self.name = "dream"
        self.busy = False  # a dream is running
        self.serving = False  # an embedding page's request is under way (decoding, dreaming)
        self.request = None  # that request's id, if it gave one: replies carry it
        self.proxies = []  # kept alive as long as the page
        self.url = settings_mod.clean(json.loads(boot.query), self.outputs)
        # Before anything can prepare (a sample from the URL is loaded during start-up).
        dreamer.preparer.enabled = self.url.get("prepare") != "off"
        self.hidden = {}
        self.keep_hidden(self.url)
        self.guide = GuidePanel(self)
        self.zoom = ZoomPanel(self)
        self.channels = ChannelPanel(self)
        self.models = ModelPanel(self)
        self.requests = EmbedRequests(self)

    @property
    def outputs(self) -> list:
        """The running model's layers (manifest outputs): they change with the model."""
        return self.dreamer.outputs

    # --- wiring -----------------------------------------------------------------------

    def on(self, element: object, event: str, handler: object) -> None:
        """addEventListener with a proxy that lives as long as the page."""
        proxy = create_proxy(handler)
        self.proxies.append(proxy)
        element.addEventListener(event, proxy)

    def spawn(self, coroutine: object) -> None:
        """Run a coroutine from a synchronous event handler."""
        asyncio.create_task(coroutine)

    async def start(self) -> None:
        """Build the controls, apply URL settings, wire events, say we are ready."""
        await self.models.build()
        self.build_layer_controls()
        if "preset" in self.url:
            el("preset").value = self.url["preset"]
        self.apply(settings_mod.resolve(self.url, self.dreamer.model))
        self.wire()
        self.show_backend()
        self.status("Ready. Choose a photo or a sample.")
        self.embed.listen(create_proxy(self.requests.on_message))
        if "sample" in self.url:
            await self.load_sample(self.url["sample"])
        self.embed.post(to_js({"type": "ready"}))
        window.dispatchEvent(window.CustomEvent.new("dreamframe:ready"))
        self.dreamer.preparer.on_first = self.prepared
        if self.dreamer.preparer.applies():
            self.prepare_idle()
        else:
            self.prepared(None)  # wasm and cpu compile no programs (or prepare=off)
        if "autostart" in self.url and self.source is not None:
            if self.url.get("mode") == "zoom":
                await self.zoom.run()
            else:
                await self.run()

    def wire(self) -> None:
        """Connect every control to its handler."""
        self.on(el("file"), "change", self.on_file)
        self.on(el("start"), "click", lambda event: self.spawn(self.run()))
        self.on(el("stop"), "click", lambda event: self.stop())
        self.on(el("download"), "click", lambda event: self.spawn(self.download()))
        self.on(el("again"), "click", lambda event: self.spawn(self.dream_again()))
        self.on(el("preset"), "change", self.on_preset)
        self.on(el("compare-slider"), "input", self.on_compare)
        zone = el("drop-zone")
        self.on(zone, "dragover", self.on_dragover)
        self.on(zone, "dragleave", lambda event: zone.classList.remove("dragging"))
        self.on(zone, "drop", self.on_drop)
        self.on(zone, "keydown", self.on_zone_key)
        self.on(document, "paste", self.on_paste)
        self.guide.wire()
        self.zoom.wire()
        self.channels.wire()
        buttons = document.querySelectorAll("[data-sample]")
        for i in range(buttons.length):
            button = buttons[i]
            name = button.getAttribute("data-sample")
            self.on(button, "click", lambda event, name=name: self.spawn(self.load_sample(name)))

    # --- messages to the visitor ------------------------------------------------------

    def status(self, text: str, error: bool = False) -> None:
        node = el("status")
        node.textContent = text
        if error:
            node.classList.add("error")
        else:
            node.classList.remove("error")

    def show_backend(self) -> None:
        backend = self.boot.backend
        text = "Running on " + self.backend_label() + " (" + str(backend.device) + ")."
        if not backend.gpu:
            text += (" No GPU in use: " + str(backend.reason) + ". Dreams run on the CPU and"
                     " take longer; fewer steps or a smaller photo help.")
        elif backend.software:
            text += (" This is a software GPU adapter, much slower than WebAssembly here ("
                     + str(backend.reason) + ").")
        el("backend").textContent = text

    # --- settings ---------------------------------------------------------------------

    def build_layer_controls(self) -> None:
        """One weight slider per model layer, named for a visitor, layer name on hover."""
        box = el("layers")
        for out in self.outputs:
            label = document.createElement("label")
            label.title = out["layer"] + " (stride " + str(out["stride"]) + ")"
            name = document.createElement("span")
            name.textContent = out["label"]
            slider = document.createElement("input")
            slider.type = "range"
            slider.min = "0"
            slider.max = str(settings_mod.WEIGHT_LIMITS[1])
            slider.step = "0.1"
            slider.id = "w-" + out["layer"]
            slider.setAttribute("aria-label", out["label"] + " weight (" + out["layer"] + ")")
            value = document.createElement("output")
            value.id = "v-" + out["layer"]
            self.on(slider, "input", lambda event, v=value, s=slider: self.show_weight(v, s))
            label.append(name, slider, value)
            box.append(label)

    def show_weight(self, output: object, slider: object) -> None:
        output.textContent = str(slider.value)

    def apply(self, settings: dict) -> None:
        """Show full settings in the controls."""
        for out in self.outputs:
            slider = el("w-" + out["layer"])
            slider.value = str(settings["weights"].get(out["layer"], 0.0))
            self.show_weight(el("v-" + out["layer"]), slider)
        for key in NUMBER_FIELDS:
            el(key).value = str(settings.get(key, 0))

    def read(self) -> dict:
        """Full, clean settings from the controls (over the chosen preset)."""
        raw = {"preset": el("preset").value, "weights": {}}
        for out in self.outputs:
            raw["weights"][out["layer"]] = el("w-" + out["layer"]).value
        for key in NUMBER_FIELDS:
            raw[key] = el(key).value
        cleaned = settings_mod.clean(raw, self.outputs)
        cleaned.update(self.hidden)
        return settings_mod.resolve(cleaned, self.dreamer.model)

    def keep_hidden(self, cleaned: dict) -> None:
        """Remember the clean settings that no control shows (HIDDEN_FIELDS)."""
        for key in HIDDEN_FIELDS:
            if key in cleaned:
                self.hidden[key] = cleaned[key]

    def on_preset(self, event: object) -> None:
        self.apply(settings_mod.resolve({"preset": el("preset").value}, self.dreamer.model))

    # --- image in ---------------------------------------------------------------------

    async def load_blob(self, blob: object, name: object) -> bool:
        """A photo from the visitor (file, drop, paste, sample); False if unusable."""
        if self.busy or self.serving:
            self.status("A dream is running: stop it first.", True)
            return False
        return await self.load_photo(blob, name) is None

    async def load_photo(self, blob: object, name: object) -> object:
        """Decode a file or blob and make it the photo to dream on.

        Returns None, or why it cannot be used (also shown on the page): the same words
        reach an embedding page.
        """
        decoded, why = await self.decode(blob, limits.MAX_SIDE)
        if why is not None:
            self.status("Could not open that image: " + why + ".", True)
            return why
        biggest = limits.largest_photo(self.dreamer.max_elements())
        tensor = self.images.toTensor(self.tf, decoded.bitmap)
        fault = self.boot.takeFault()
        if not is_none(fault):  # e.g. no memory left for it
            decoded.bitmap.close()
            self.status("Could not open that image: " + str(fault) + ".", True)
            return str(fault)
        self.images.drawBitmap(decoded.bitmap, el("before"))
        self.images.drawBitmap(decoded.bitmap, el("after"))
        decoded.bitmap.close()
        self.replace_source(tensor)
        self.name = pagelogic.file_stem(name)
        gpu = self.backend_label() if biggest is not None else None
        el("note").textContent = pagelogic.scaled_note(
            (decoded.originalWidth, decoded.originalHeight), (decoded.width, decoded.height),
            limits.MAX_SIDE, gpu)
        document.body.classList.add("has-image")
        self.prepare_idle()  # its own sizes, while the visitor looks at it
        el("drop-zone").classList.add("has-image")
        el("start").disabled = False
        el("zoom-start").disabled = False
        el("download").disabled = True
        el("again").disabled = True
        el("compare-slider").disabled = True
        self.status("Photo loaded. Press Dream.")
        return None

    async def decode(self, blob: object, max_side: int) -> tuple:
        """(decoded image, None) or (None, why not) for a photo or a guide: at most
        `max_side` px on its longer side and what the backend's largest tensor holds."""
        biggest = limits.largest_photo(self.dreamer.max_elements())
        try:
            decoded = await self.images.decode(blob, to_js({
                "maxSide": max_side, "minSide": self.dreamer.min_side, "maxPixels": biggest}))
        except Exception as error:  # decode() says why in words a visitor can read
            return None, pagelogic.message_of(error)
        return decoded, None

    def free(self, *tensors: object) -> None:
        """Dispose tensors (None allowed); a failure to free is not worth a word."""
        for tensor in tensors:
            if tensor is not None:
                self.dreamer.ops.dispose(tensor)
        self.boot.takeFault()

    def replace_source(self, tensor: object) -> None:
        self.free(self.source, self.result)
        self.source = tensor
        self.result = None

    async def load_sample(self, name: str) -> None:
        if name not in settings_mod.SAMPLES:
            return
        response = await window.fetch("samples/" + name + ".jpg")
        blob = await response.blob()
        await self.load_blob(blob, name)

    def on_file(self, event: object) -> None:
        files = event.target.files
        if files.length:
            self.spawn(self.load_blob(files.item(0), files.item(0).name))
        event.target.value = ""  # choosing the same file again still fires

    def on_dragover(self, event: object) -> None:
        event.preventDefault()
        el("drop-zone").classList.add("dragging")

    def on_drop(self, event: object) -> None:
        event.preventDefault()
        el("drop-zone").classList.remove("dragging")
        files = event.dataTransfer.files
        if files.length:
            self.spawn(self.load_blob(files.item(0), files.item(0).name))

    def on_paste(self, event: object) -> None:
        files = event.clipboardData.files if event.clipboardData else None
        if files and files.length:
            event.preventDefault()
            self.spawn(self.load_blob(files.item(0), "pasted"))

    def on_zone_key(self, event: object) -> None:
        if event.key in ("Enter", " "):
            event.preventDefault()
            el("file").click()

    # --- dreaming ---------------------------------------------------------------------

    def set_running(self, running: bool) -> None:
        self.busy = running
        el("start").disabled = running or self.source is None
        el("zoom-start").disabled = running or self.source is None
        el("stop").disabled = not running
        for key in ("file", "preset") + NUMBER_FIELDS:
            el(key).disabled = running

    def prepare_idle(self) -> None:
        """Prepare the GPU, in the background, for the dream the page would start now: this
        photo (or, before any, a small default one) with the current settings."""
        if self.source is None:
            size = NOMINAL_SIZE
        else:
            size = (int(self.source.shape[1]), int(self.source.shape[2]))
        try:
            options = self.read()
        except ValueError:  # settings no dream could use (every weight 0): nothing to prepare
            return
        self.dreamer.preparer.idle(size, options, self.source is not None)

    def prepared(self, job: object) -> None:
        """The first preparation is over: tell the embedding page and scripts, once."""
        count = int(self.boot.prepare.programCount(self.tf))
        self.embed.post(to_js({"type": "prepared", "programs": count}))
        window.dreamframe.prepared = count  # for scripts that arrive after the event
        window.dispatchEvent(window.CustomEvent.new("dreamframe:prepared"))

    async def prepare_for(self, size: tuple, options: dict) -> None:
        """Before a dream: the GPU programs it still lacks, with progress shown. The page
        answers meanwhile (the work comes in slices) and Stop stops it."""
        preparer = self.dreamer.preparer
        if preparer.ready_for(size, options):
            return
        self.status("Preparing the GPU…")
        el("progress-text").textContent = pagelogic.preparing_text(0.0)

        def progress(fraction: float) -> None:
            el("progress").value = fraction
            el("progress-text").textContent = pagelogic.preparing_text(fraction)

        await preparer.ensure(size, options, False, progress)
        el("progress").value = 0

    def reply(self, message: dict) -> None:
        """Tell the embedding page, with the id of the request being served (if any)."""
        if self.request is not None:
            message["id"] = self.request
        self.embed.post(to_js(message))

    async def run(self, options: object = None, retry: object = None,
                  notice: object = None, claimed: bool = False) -> None:
        """Dream the current photo with the current settings, previewing every step.

        A lost GPU or a backend that computes no gradient moves the page to the next backend;
        running out of memory retries with smaller tiles, then at half the resolution. Either
        way the page stays usable. `retry` says how this run differs from one that ran out of
        memory; `notice` why it runs again, for the visitor. Exactly one of `done`, `stopped`
        or `error` reaches the embedding page. `claimed`: run for the request being served (or
        a retry), which the Dream button may not start while one is under way.
        """
        if self.source is None or self.busy or (self.serving and not claimed):
            return
        await self.channels.pause()  # its thumbnails share the dreamer
        options = options or self.read()
        height, width = int(self.source.shape[1]), int(self.source.shape[2])
        schedule = self.dreamer.plan(options)[1]
        sizes = schedule.octave_sizes(height, width)
        started = window.performance.now()
        dreaming = [started]  # when the steps began, after any preparation (for the ETA)
        self.set_running(True)
        el("progress").value = 0
        after = el("after")

        async def on_step(info: object) -> None:
            await self.images.drawTensor(self.tf, info.image, after, self.boot.read)
            if info.done == 1:
                window.performance.mark("dreamframe:first-frame")
            left = pagelogic.eta_seconds(sizes, info.steps, info.done,
                                         window.performance.now() - dreaming[0])
            el("progress").value = info.done / info.total
            el("progress-text").textContent = pagelogic.progress_text(
                info.octave, info.octaves, info.step, info.steps, left)
            self.reply({"type": "progress", "done": info.done, "total": info.total,
                        "octave": info.octave, "step": info.step})

        result = None
        failure = None
        self.dreamer.cancelled = False
        self.dreamer.preparer.claims += 1  # no background preparation until it is over
        try:
            await self.prepare_for((height, width), options)
            if notice is not None:
                self.status(notice + " Dreaming again…", True)
            elif retry is None:
                self.status("Dreaming…")
            else:
                self.status("Out of memory on " + self.backend_label() + ": dreaming again "
                            + retry + "…", True)
            dreaming[0] = window.performance.now()
            if not self.dreamer.cancelled:  # Stop while preparing: no dream
                result = await self.dreamer.run(self.source, options, on_step,
                                                self.guide.tensor)
        except Exception as error:
            failure = error
        finally:
            self.dreamer.preparer.claims -= 1
            self.set_running(False)
        if failure is not None:
            await self.handle_failure(failure, options, self.run_again)
            return
        if result is None:
            self.status("Stopped. Press Dream to start again.")
            el("progress-text").textContent = "Stopped."
            self.reply({"type": "stopped"})
            return
        self.free(self.result)
        self.result = result
        await self.images.drawTensor(self.tf, result, after)
        seconds = (window.performance.now() - started) / 1000.0
        # One line says it all: the status (the progress line under the bar is cleared).
        el("progress-text").textContent = ""
        took = " in " + str(int(seconds + 0.5)) + " s"
        done = "Done" + took
        if retry is not None:
            done += ", " + retry + " (the first try ran out of memory)"
        if notice is not None:
            done = notice + " Done on " + self.backend_label() + took
        self.status(done + ". Slide to compare, download it, or dream again on it.")
        el("note").textContent = pagelogic.dream_note((int(after.width), int(after.height)))
        el("download").disabled = False
        el("again").disabled = False
        el("compare-slider").disabled = False
        el("compare-slider").value = "100"
        el("compare").style.setProperty("--reveal", "100%")
        png = await self.images.toPng(after)
        self.reply({"type": "done", "width": width, "height": height, "image": png})
        self.channels.resume()

    async def run_again(self, options: dict, retry: object, notice: object) -> None:
        """The dream once more after a failure (handle_failure's `again` for a dream)."""
        await self.run(options, retry, notice, True)

    async def handle_failure(self, error: object, options: dict, again: object,
                             what: str = "dream") -> None:
        """Say what went wrong, move on to something that works, and retry if that helps.

        One policy for every kind of run: `again(options, retry, notice)` starts the same
        run (a dream, a zoom video) once more; `what` names it for the visitor.
        """
        kind = pagelogic.classify(error, bool(self.boot.memoryFull()))
        message = pagelogic.message_of(error)
        if kind == "broken backend":
            await self.replace_broken_backend(message, options, again)
        elif kind == "gpu lost":
            if not await self.recover(False):
                return
            why = "The GPU stopped working (" + message + "). Switched to " + self.backend_label()
            self.status(why + ": start again to carry on.", True)
            self.reply({"type": "error", "message": why, "backend": str(self.boot.backend.name)})
        elif kind == "out of memory":
            await self.retry_smaller(options, again)
        else:
            self.status("The " + what + " failed: " + message + ".", True)
            self.reply({"type": "error", "message": "the " + what + " failed: " + message})

    async def retry_smaller(self, options: dict, again: object) -> None:
        """After running out of memory: a fresh backend, then smaller tiles or half the size."""
        backend = self.backend_label()
        if not await self.recover(True):  # a fresh instance: an overflowed heap is unusable
            return
        height, width = int(self.source.shape[1]), int(self.source.shape[2])
        attempt = pagelogic.after_out_of_memory(options, height, width)
        if attempt is None:
            why = "out of memory even for a small image on " + backend
            self.status(why[0].upper() + why[1:] + ".", True)
            self.reply({"type": "error", "message": why})
            return
        options, halve = attempt
        if halve:
            await self.halve_source()
            how = "at half the resolution"
        else:
            self.hidden["tile_size"] = options["tile_size"]  # for later dreams too
            how = "with tiles of " + str(options["tile_size"]) + " px"
        self.reply({"type": "progress", "done": 0, "total": 0,
                    "notice": "out of memory on " + backend + ": dreaming again " + how})
        await again(options, how, None)

    def backend_label(self) -> str:
        """The running backend's name for a visitor: WebGPU, WebGL, WebAssembly, CPU."""
        name = str(self.boot.backend.name)
        label = getattr(self.boot.labels, name, None)
        return name if label is None or is_none(label) else str(label)

    async def replace_broken_backend(self, reason: str, options: dict, again: object) -> None:
        """The backend computed nothing (render.BrokenBackendError): say so, move on, dream again.

        The broken backend is remembered for the rest of the visit (web/js/backends.js).
        """
        text = "The " + self.backend_label() + " backend " + reason + "."
        if not await self.recover(False, True):
            return
        notice = text + " Switched to " + self.backend_label() + "."
        self.reply({"type": "progress", "done": 0, "total": 0, "notice": notice,
                    "backend": str(self.boot.backend.name)})
        await again(options, None, notice)

    async def recover(self, reset: bool, broken: bool = False) -> bool:
        """Switch (or restart) the backend, reload the model, rebuild the photo's tensor.

        False, with a message, when no backend is left: then only a reload can help.
        """
        try:
            await self.boot.recover(to_js({"reset": reset, "broken": broken}))
        except Exception as error:
            self.status("Dreaming stopped working here (" + pagelogic.message_of(error)
                        + "). Reload the page to start again.", True)
            self.reply({"type": "error", "message": "no backend is left to dream on"})
            return False
        self.dreamer.reset()
        self.free(self.source, self.result, self.guide.tensor)  # gone with their backend
        self.source = self.images.toTensor(self.tf, el("before"))
        self.guide.rebuild()
        self.result = None
        el("download").disabled = True
        el("again").disabled = True
        self.show_backend()
        return True

    async def halve_source(self) -> None:
        """Continue at half the resolution (the last resort when memory runs out)."""
        height, width = int(self.source.shape[1]), int(self.source.shape[2])
        ops = self.dreamer.ops
        smaller = ops.tidy(lambda: [ops.resize(self.source, height // 2, width // 2)])[0]
        self.free(self.source)
        self.source = smaller
        await self.images.drawTensor(self.tf, smaller, el("before"))
        await self.images.drawTensor(self.tf, smaller, el("after"))

    def stop(self) -> None:
        if self.busy:
            self.dreamer.cancel()
            self.dreamer.preparer.stop_running()  # a dream still preparing stops there
            self.status("Stopping after this step…")

    async def download(self) -> None:
        """Save the dream as a PNG at the photo's full (possibly scaled) resolution."""
        if self.result is None:
            return
        await self.images.drawTensor(self.tf, self.result, el("after"))
        blob = await self.images.toPng(el("after"))
        self.images.save(blob, self.name + "-dream.png")

    async def dream_again(self) -> None:
        """Use the result as the new photo and dream on it."""
        if self.result is None or self.busy:
            return
        again = self.result
        self.result = None
        self.free(self.source)
        self.source = again
        await self.images.drawTensor(self.tf, again, el("before"))
        await self.run()

    def on_compare(self, event: object) -> None:
        el("compare").style.setProperty("--reveal", str(event.target.value) + "%")
