"""The page's Python entry point: connects the dream engine to the loaded TF.js model.

Runs under PyScript (Pyodide or MicroPython). It waits for the JS boot (backend chosen,
model loaded, see web/js/boot.js), then publishes `window.dreamframe.engine` with
`dream(image, options_json, on_step)` -> Promise of the result tensor (or null if
cancelled) and `cancel()`.
"""

import asyncio
import json

from dreamengine import presets
from dreamengine.objective import Objective
from dreamengine.render import dream_steps, gradient_step
from dreamengine.schedule import Schedule
from dreamengine.tfjs_backend import TfjsBackend
from dreamengine.transforms import Transforms
from pyscript import document, window
from pyscript.ffi import create_proxy, to_js


def settings_from(options: dict) -> tuple:
    """Objective, schedule, transforms and seed from page options over the defaults."""
    s = dict(presets.DEFAULT)
    for key in options:
        s[key] = options[key]
    channel = tuple(s["channel"]) if s.get("channel") else None
    objective = Objective(s["weights"], s.get("norm", "mean"), channel)
    schedule = Schedule(s["octaves"], s["octave_scale"], s["steps"], s["step_size"])
    transforms = Transforms(s["jitter"], s.get("tile_size", 512))
    return objective, schedule, transforms, int(s.get("seed", 0))


class Dreamer:
    """One dream at a time on the page's backend; cancellable between steps."""

    def __init__(self, tf: object, loaded: object) -> None:
        self.tf = tf
        self.ops = TfjsBackend(tf, loaded)
        self.outputs = json.loads(window.JSON.stringify(loaded.manifest.outputs))
        self.cancelled = False

    def cancel(self) -> None:
        """Stop the running dream after its current step."""
        self.cancelled = True

    def step(self, image: object, options_json: str, dy: int, dx: int) -> object:
        """One gradient step with a given roll: [new image, gradient], owned by the caller.

        For checking the page against the native reference step by step: DeepDream's
        gradient jumps whenever a ReLU gate flips, so two runs that differ by rounding drift
        apart over many steps, and only a step taken from the same image can be compared.
        """
        objective, schedule, transforms, _ = settings_from(json.loads(options_json))
        objective.check(self.outputs)
        updated, grad, _ = gradient_step(self.ops, image, objective, schedule.step_size,
                                         transforms, (dy, dx), (-1.0, 1.0))
        return to_js([updated, grad])

    async def dream(self, image: object, options_json: str, on_step: object = None) -> object:
        """Dream `image` ([1, h, w, 3] in [-1, 1]); the caller owns both it and the result."""
        objective, schedule, transforms, seed = settings_from(json.loads(options_json))
        objective.check(self.outputs)
        self.cancelled = False
        ops = self.ops
        result = None
        steps = dream_steps(ops, image, objective, schedule, transforms, seed)
        try:
            for info in steps:
                if on_step is not None:
                    on_step(to_js({"octave": info.octave, "octaves": info.octaves,
                                   "step": info.step, "steps": info.steps, "done": info.done,
                                   "total": info.total, "loss": info.loss,
                                   "image": info.image, "gradient": info.gradient}))
                if info.done == info.total:
                    result = ops.tidy(lambda info=info: [ops.scale(info.image, 1.0)])[0]
                elif self.cancelled:
                    break
                await asyncio.sleep(0)  # let the page paint and take a click on "stop"
        finally:
            steps.close()
        return result


async def start() -> None:
    """Wait for the JS boot, then hand the engine to the page."""
    while not hasattr(window, "dreamframeBoot"):
        await asyncio.sleep(0.01)
    boot = await window.dreamframeBoot
    dreamer = Dreamer(boot.tf, boot.loaded)
    boot.engine = to_js({"dream": create_proxy(dreamer.dream),
                         "cancel": create_proxy(dreamer.cancel),
                         "step": create_proxy(dreamer.step),
                         "interpreter": "pyodide" if hasattr(window, "loadPyodide") else "python"})
    status = document.getElementById("status")
    if status:
        status.textContent = "Ready: " + boot.backend.name + " backend."
    window.dispatchEvent(window.CustomEvent.new("dreamframe:ready"))


asyncio.ensure_future(start())
