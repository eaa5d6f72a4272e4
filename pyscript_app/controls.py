"""The dream's settings on the page: one weight slider per layer of the running model, the
number fields, the preset menu, and the settings no control shows (kept from the URL, an
embedding page's message or an out-of-memory retry). What a value may be is settings.py's.
"""

import settings as settings_mod
from dom import el, listen
from pyscript import document

NUMBER_FIELDS = ("octaves", "steps", "step_size", "jitter", "seed", "guide_mix", "zoom_frames",
                 "zoom", "rotation", "zoom_steps", "video_max_side", "video_steps",
                 "video_blend", "camera_max_side")
CHECK_FIELDS = ("video_flow",)  # checkboxes
# Settings without a control: kept for every later dream.
HIDDEN_FIELDS = ("norm", "octave_scale", "tile_size", "channel", "guide_layers")
LAYER_FIELDS = ("channel", "guide_layers")  # name the running model's layers


class Controls:
    """The settings controls of the running model (dreamer.outputs, dreamer.model)."""

    def __init__(self, dreamer) -> None:
        self.dreamer = dreamer
        self.hidden = {}

    def build(self) -> None:
        """One weight slider per model layer, named for a visitor, layer name on hover; each
        number field's range from settings.LIMITS (the page's HTML names none)."""
        for key in NUMBER_FIELDS:
            low, high, _ = settings_mod.LIMITS[key]
            el(key).min = str(low)
            el(key).max = str(high)
        box = el("layers")
        for out in self.dreamer.outputs:
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
            listen(slider, "input", lambda event, v=value, s=slider: self.show_weight(v, s))
            label.append(name, slider, value)
            box.append(label)

    def wire(self) -> None:
        """The preset menu shows its values as it is chosen."""
        listen(el("preset"), "change", lambda event: self.show_preset())

    def rebuild(self) -> None:
        """After a model switch: its own sliders, the preset's values, no settings that
        named the other model's layers."""
        for key in LAYER_FIELDS:
            self.hidden.pop(key, None)
        labels = el("layers").querySelectorAll("label")  # static: removing shifts nothing
        for i in range(labels.length):
            labels[i].remove()
        self.build()
        self.show_preset()

    def show_weight(self, output, slider) -> None:
        """A slider's value beside it."""
        output.textContent = str(slider.value)

    def set_weight(self, layer: str, weight: float) -> None:
        """One layer's slider (the channel explorer dreams a layer it shows)."""
        slider = el("w-" + layer)
        slider.value = str(weight)
        self.show_weight(el("v-" + layer), slider)

    def choose_channel(self, layer: str, index: int) -> None:
        """Dream one channel of `layer` from now on (the channel explorer), its layer on."""
        self.hidden["channel"] = [layer, index]
        if float(el("w-" + layer).value) == 0.0:
            self.set_weight(layer, 1.0)

    def show_preset(self, name: str | None = None) -> None:
        """Select preset `name` (or keep the menu's) and show its values."""
        if name is not None:
            el("preset").value = name
        self.apply(settings_mod.resolve({"preset": el("preset").value}, self.dreamer.model))

    def apply(self, settings: dict) -> None:
        """Show full settings in the controls."""
        for out in self.dreamer.outputs:
            self.set_weight(out["layer"], settings["weights"].get(out["layer"], 0.0))
        for key in NUMBER_FIELDS:
            el(key).value = str(settings.get(key, 0))
        for key in CHECK_FIELDS:
            el(key).checked = bool(settings.get(key, True))

    def take(self, cleaned: dict) -> None:
        """Clean settings from the URL or a message: shown where a control has them, kept
        where none does (HIDDEN_FIELDS)."""
        for key in HIDDEN_FIELDS:
            if key in cleaned:
                self.hidden[key] = cleaned[key]
        if "preset" in cleaned:
            el("preset").value = cleaned["preset"]
        self.apply(settings_mod.resolve(cleaned, self.dreamer.model))

    def keep(self, key: str, value) -> None:
        """One setting for every later dream (an out-of-memory retry's tile size)."""
        self.hidden[key] = value

    def read(self) -> dict:
        """Full, clean settings from the controls (over the chosen preset)."""
        raw = {"preset": el("preset").value, "weights": {}}
        for out in self.dreamer.outputs:
            raw["weights"][out["layer"]] = el("w-" + out["layer"]).value
        for key in NUMBER_FIELDS:
            raw[key] = el(key).value
        for key in CHECK_FIELDS:
            raw[key] = bool(el(key).checked)
        cleaned = settings_mod.clean(raw, self.dreamer.outputs)
        cleaned.update(self.hidden)
        return settings_mod.resolve(cleaned, self.dreamer.model)

    def lock(self, running: bool) -> None:
        """No file or setting changes while something runs."""
        for key in ("file", "preset") + NUMBER_FIELDS + CHECK_FIELDS:
            el(key).disabled = running
