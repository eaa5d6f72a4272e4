"""The guide image: a second picture whose features steer the dream (dreamengine/guide.py).

It comes in as the photo does (file picker, or an embedding page's message), with the same
refusals, is scaled to at most GUIDE_SIDE px (the guide's features are subsampled to a
thousand or so vectors anyway), and is kept as a tensor until removed. The dreamer computes
its features at the start of each dream, on whatever backend runs then.
"""

from dom import el, listen, spawn
from photos import ImageLoader

from dreamengine.presets import GUIDE

GUIDE_SIDE = GUIDE["max_side"]


class GuidePanel:
    """The guide picker, its preview, and the guide tensor (None without a guide)."""

    def __init__(self, app, services) -> None:
        self.app = app
        self.tf, self.images = services[1], services[2]
        self.loader = ImageLoader(services)  # the photo's loader, with the guide's size
        self.tensor = None

    def wire(self) -> None:
        """Connect the guide's controls."""
        listen(el("guide-file"), "change", self.on_file)
        listen(el("guide-clear"), "click", lambda event: self.clear())

    def on_file(self, event) -> None:
        files = event.target.files
        if files.length:
            spawn(self.load(files.item(0)))
        event.target.value = ""

    async def load(self, blob) -> str | None:
        """Make `blob` the guide; returns None, or why it cannot be used (also shown)."""
        if self.app.running():
            el("guide-note").textContent = "A dream is running: stop it first."
            return "a dream is running"
        tensor, decoded, why = await self.loader.load(blob, GUIDE_SIDE, [el("guide")])
        if why is not None:
            el("guide-note").textContent = "Could not use that guide: " + why + "."
            return why
        self.app.free(self.tensor)
        self.tensor = tensor
        el("guide-clear").disabled = False
        el("guide-note").textContent = ("Guide " + str(decoded.width) + "×" + str(decoded.height)
                                        + " px: the next dream follows it.")
        return None

    def clear(self) -> None:
        """Dream without a guide again."""
        self.app.free(self.tensor)
        self.tensor = None
        canvas = el("guide")
        canvas.width = 0
        canvas.height = 0
        el("guide-clear").disabled = True
        el("guide-note").textContent = ""

    def rebuild(self) -> None:
        """After a backend change: the old tensor went with its backend; redraw from the
        preview."""
        if self.tensor is not None:
            self.app.free(self.tensor)  # of the lost backend: no harm
            self.tensor = self.images.toTensor(self.tf, el("guide"))
