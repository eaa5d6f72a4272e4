"""The model choice: Light (MobileNetV2) or Classic (InceptionV3), each with its download
size from its manifest. The chosen model's weights are fetched only then, with a progress
bar; what depends on its layers (sliders, presets, the channel explorer) is rebuilt.
"""

import pagelogic
from dom import el, listen, show_status, spawn
from pyscript import document, window
from pyscript.ffi import create_proxy


class ModelPanel:
    """The model menu and switching models."""

    def __init__(self, app, services: tuple) -> None:
        self.app = app
        self.boot, self.tf, self.images, self.dreamer = services

    async def build(self) -> None:
        """The models on offer, each with its download size; the running one selected."""
        app = self.app
        select = el("model")
        choices = await self.boot.dreamModel.choices()  # web/js/model.js
        for i in range(choices.length):
            option = document.createElement("option")
            option.value = choices[i].name
            option.textContent = choices[i].label
            select.append(option)
        select.value = app.model()
        listen(select, "change", lambda event: spawn(self.switch(select.value)))

    async def switch(self, name: str, claimed: bool = False) -> bool:
        """Load model `name` in place of the running one; False when it could not (a dream
        running, or the download failed), with the reason shown. `claimed`: for the
        embedding page's request being served."""
        app = self.app
        name = str(name)
        if name == app.model():
            return True
        if app.running() or (app.serving_request() and not claimed):
            el("model").value = app.model()
            show_status("A dream is running: stop it first.", True)
            return False
        await app.pause_explorer()
        bar = el("model-progress")
        bar.value = 0
        bar.hidden = False
        show_status("Loading the model…")
        el("start").disabled = True

        def progress(fraction: float) -> None:
            bar.value = fraction

        try:
            await self.boot.switchModel(name, create_proxy(progress))
        except Exception as error:
            el("model").value = app.model()
            show_status("Could not load that model: " + pagelogic.message_of(error) + ".", True)
            return False
        finally:
            bar.hidden = True
            el("start").disabled = app.photo() is None
        app.model_changed()
        url = window.URL.new(window.location.href)
        url.searchParams.set("model", name)
        url.searchParams.delete("channel")
        window.history.replaceState(None, "", url.href)
        el("model").value = name
        show_status("Model ready: " + str(el("model").selectedOptions[0].textContent) + ".")
        if not claimed:
            app.prepare_idle()  # the new model's programs (a request's dream prepares its own)
        return True
