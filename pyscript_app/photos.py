"""Images in: one loader for the photo and the guide (decode with the page's limits, make
the tensor, draw the previews, free the bitmap), and the ways a visitor hands a photo over
(file picker, drop, paste, the drop zone's keyboard, sample buttons).
"""

import limits
import pagelogic
from dom import el, listen, spawn
from pyscript import document, window
from pyscript.ffi import is_none, to_js


class ImageLoader:
    """Blob -> tensor on the running backend, or the reason a visitor reads."""

    def __init__(self, services: tuple) -> None:
        self.boot, self.tf, self.images, self.dreamer = services  # as the App's parts get them

    async def load(self, blob, max_side: int, canvases: list) -> tuple:
        """(tensor, decoded, None) or (None, None, why not): at most `max_side` px on its
        longer side and what the backend's largest tensor holds, drawn on `canvases`."""
        biggest = limits.largest_photo(self.dreamer.max_elements())
        try:
            decoded = await self.images.decode(blob, to_js({
                "maxSide": max_side, "minSide": self.dreamer.min_side, "maxPixels": biggest}))
        except Exception as error:  # decode() says why in words a visitor can read
            return None, None, pagelogic.message_of(error)
        tensor = self.images.toTensor(self.tf, decoded.bitmap)
        fault = self.boot.takeFault()
        if is_none(fault):
            for canvas in canvases:
                self.images.drawBitmap(decoded.bitmap, canvas)
        decoded.bitmap.close()
        if not is_none(fault):  # e.g. no memory left for it
            return None, None, str(fault)
        return tensor, decoded, None


def wire_photo_inputs(load) -> None:
    """Every way a photo comes in calls `load(blob, name)` (a coroutine)."""
    zone = el("drop-zone")

    def take(files, name=None) -> bool:
        if not files or not files.length:
            return False
        spawn(load(files.item(0), name or files.item(0).name))
        return True

    def on_file(event) -> None:
        take(event.target.files)
        event.target.value = ""  # choosing the same file again still fires

    def on_dragover(event) -> None:
        event.preventDefault()
        zone.classList.add("dragging")

    def on_drop(event) -> None:
        event.preventDefault()
        zone.classList.remove("dragging")
        take(event.dataTransfer.files)

    def on_paste(event) -> None:
        if take(event.clipboardData.files if event.clipboardData else None, "pasted"):
            event.preventDefault()

    def on_key(event) -> None:
        if event.key in ("Enter", " "):
            event.preventDefault()
            el("file").click()

    listen(el("file"), "change", on_file)
    listen(zone, "dragover", on_dragover)
    listen(zone, "dragleave", lambda event: zone.classList.remove("dragging"))
    listen(zone, "drop", on_drop)
    listen(zone, "keydown", on_key)
    listen(document, "paste", on_paste)
    buttons = document.querySelectorAll("[data-sample]")
    for i in range(buttons.length):
        name = buttons[i].getAttribute("data-sample")
        listen(buttons[i], "click", lambda event, name=name: spawn(load_sample(load, name)))


async def load_sample(load, name: str) -> None:
    """One of the page's own sample photos (settings.SAMPLES)."""
    response = await window.fetch("samples/" + name + ".jpg")
    await load(await response.blob(), name)
