"""The channel explorer: what each feature (channel) of a layer dreams, as small pictures.

Each thumbnail is a short single-channel dream from neutral grey with a little noise
(THUMB_SIDE px, one octave), rendered only when it scrolls into view, one at a time with a
pause for the browser between steps, and kept for the visit. Clicking one dreams the photo
with that channel (`channel=layer:index`, also written into the address bar so the dream can
be shared). A dream started by the visitor pauses the explorer: both use the one dreamer.
"""

import settings as settings_mod
from dom import el, listen, spawn
from pyscript import document, window
from pyscript.ffi import create_proxy, to_js

from dreamengine.presets import CHANNEL_THUMB
from dreamengine.render import SilentObjectiveError

THUMB_SIDE = CHANNEL_THUMB["side"]
THUMB = {}
for _key in CHANNEL_THUMB:
    if _key not in ("side", "noise"):
        THUMB[_key] = CHANNEL_THUMB[_key]


class ChannelPanel:
    """The layer choice, its grid of thumbnails, and the queue of ones to render."""

    def __init__(self, app, services: tuple) -> None:
        self.app = app
        self.boot, self.tf, self.images, self.dreamer = services
        self.grids = {}  # layer -> its grid's buttons (kept: thumbnails are made once)
        self.wanted = []  # (layer, index) scrolled into view, not yet rendered
        self.done = set()
        self.rendering = False
        self.paused = False
        self.observer = None

    def wire(self) -> None:
        """Fill the layer choice and connect the panel."""
        self.fill_layers()
        listen(el("channel-box"), "toggle", lambda event: self.show())
        listen(el("channel-layer"), "change", lambda event: self.show())

    def fill_layers(self) -> None:
        select = el("channel-layer")
        select.replaceChildren()
        for out in self.app.layers():
            option = document.createElement("option")
            option.value = out["layer"]
            option.textContent = out["label"] + " (" + out["layer"] + ", " + str(
                out["channels"]) + " channels)"
            select.append(option)

    def reset(self) -> None:
        """Another model: other layers, other thumbnails."""
        self.grids = {}
        self.done = set()
        self.wanted = []
        self.fill_layers()
        self.show()

    def is_open(self) -> bool:
        return bool(el("channel-box").open)

    def show(self) -> None:
        """Show the chosen layer's grid (building it the first time) and render what shows."""
        if not self.is_open():
            self.wanted = []  # leaving the panel cancels what was not started
            return
        layer = str(el("channel-layer").value)
        self.wanted = []  # what was in view of another layer's grid is not any more
        grid = el("channel-grid")
        grid.replaceChildren()
        if layer not in self.grids:
            self.grids[layer] = self.build(layer)
        buttons = self.grids[layer]
        for button in buttons:
            grid.append(button)
        if self.observer is not None:
            self.observer.disconnect()
        self.observer = self.images.watchVisible(
            to_js(buttons), create_proxy(lambda index, layer=layer: self.want(layer, index)),
            grid)
        if not self.rendering:
            spawn(self.render_wanted())

    def build(self, layer: str) -> list:
        channels = 0
        for out in self.app.layers():
            if out["layer"] == layer:
                channels = out["channels"]
        buttons = []
        for index in range(channels):
            button = document.createElement("button")
            button.type = "button"
            button.setAttribute("role", "listitem")
            button.setAttribute("aria-label", "Dream with channel " + str(index) + " of " + layer)
            button.dataset.index = str(index)
            canvas = document.createElement("canvas")
            canvas.width = THUMB_SIDE
            canvas.height = THUMB_SIDE
            label = document.createElement("span")
            label.textContent = "#" + str(index)
            button.append(canvas, label)
            listen(button, "click", lambda event, i=index: self.choose(layer, i))
            buttons.append(button)
        return buttons

    def want(self, layer: str, index: int) -> None:
        if (layer, int(index)) not in self.done:
            self.wanted.append((layer, int(index)))
            if not self.rendering:
                spawn(self.render_wanted())

    async def render_wanted(self) -> None:
        """Render the thumbnails in view, one at a time, while the panel is open."""
        if self.rendering:
            return
        self.rendering = True
        try:
            while self.wanted and self.is_open() and not self.paused and not self.app.running():
                layer, index = self.wanted.pop(0)
                if (layer, index) in self.done:
                    continue
                if await self.render(layer, index):
                    self.done.add((layer, index))
                elif not self.paused:
                    self.wanted.append((layer, index))  # in view still: try it again later
        finally:
            self.rendering = False

    async def render(self, layer: str, index: int) -> bool:
        """One thumbnail; False when cancelled or failed (it will be asked for again)."""
        app = self.app
        options = settings_mod.resolve(settings_mod.clean(
            dict(THUMB, weights={layer: 1.0}, channel=[layer, index]), app.layers()),
            self.dreamer.model)
        seed = len(self.done) + 1
        image = self.images.greyNoise(self.tf, THUMB_SIDE, seed, CHANNEL_THUMB["noise"])
        result = None
        try:
            result = await self.dreamer.run(image, options)
        except SilentObjectiveError:
            self.mark_silent(layer, index)
            return True
        except Exception as error:
            fault = self.boot.takeFault()
            window.console.warn("channel " + str(index) + " of " + layer + " failed: "
                                + str(error) + " " + str(fault))
            return False
        finally:
            app.free(image)
        if result is None:
            return False
        canvas = self.grids[layer][index].querySelector("canvas")
        await self.images.drawTensor(self.tf, result, canvas, self.boot.read)
        app.free(result)
        return True

    def mark_silent(self, layer: str, index: int) -> None:
        """A channel that does not fire on grey: say so instead of a picture."""
        button = self.grids[layer][index]
        canvas = button.querySelector("canvas")
        context = canvas.getContext("2d")
        context.fillStyle = "#808080"  # the grey it started from: nothing was dreamt
        context.fillRect(0, 0, canvas.width, canvas.height)
        button.querySelector("span").textContent = "#" + str(index) + " (silent)"
        button.title = "This channel does not respond to a grey start; it may to a photo."

    async def pause(self) -> None:
        """Stop rendering (finishing nothing) before the page's own dream uses the dreamer."""
        if not self.rendering:
            return
        self.paused = True
        self.dreamer.cancel()
        while self.rendering:
            await self.boot.yieldToBrowser()
        self.paused = False

    def resume(self) -> None:
        """Carry on with the thumbnails in view after the page's dream."""
        if self.wanted and self.is_open() and not self.rendering:
            spawn(self.render_wanted())

    def choose(self, layer: str, index: int) -> None:
        """Dream the photo with this channel: `channel=layer:index`, shown in the address."""
        app = self.app
        app.choose_channel(layer, index)
        url = window.URL.new(window.location.href)
        url.searchParams.set("channel", layer + ":" + str(index))
        window.history.replaceState(None, "", url.href)
        el("note").textContent = "Dreaming with channel " + str(index) + " of " + layer + "."
        if app.photo() is not None:
            spawn(app.start_run())
