"""The page's Python entry point: connects the dream engine to the loaded TF.js model.

Runs under PyScript (MicroPython by default, Pyodide with ?interpreter=pyodide). It waits for
the JS boot (backend chosen, model loaded: web/js/boot.js), then starts the page (app.py)
and publishes `window.dreamframe.engine` for scripts and tests:
`dream(image, options_json, on_step, guide)` -> Promise of the result tensor (null if
cancelled), `zoom(image, options_json, on_frame, guide)` -> Promise of the frame count,
`step(image, options_json, dy, dx)` -> Promise of [image, gradient], `flow(before, after)`
-> Promise of [flow, after warped along it], and `cancel()`.
Each of them first stops the GPU's preparation (prepare.py), which the page runs meanwhile.
"""

import asyncio

from app import App
from dreamer import Dreamer
from pyscript import window
from pyscript.ffi import create_proxy, to_js


async def start() -> None:
    """Wait for the JS boot, then start the page and hand the engine to scripts."""
    window.performance.mark("dreamframe:interpreter-ready")
    while not hasattr(window, "dreamframeBoot"):
        await asyncio.sleep(0.01)
    try:
        boot = await window.dreamframeBoot
    except Exception:  # web/js/boot.js says why on the page ("Could not start: ...")
        window.performance.mark("dreamframe:boot-failed")
        return
    dreamer = Dreamer(boot)
    boot.engine = to_js({"dream": create_proxy(dreamer.dream),
                         "zoom": create_proxy(dreamer.zoom_js),
                         "cancel": create_proxy(dreamer.cancel),
                         "step": create_proxy(dreamer.step),
                         "flow": create_proxy(dreamer.flow)})
    app = App(boot, dreamer)
    await app.start()


asyncio.create_task(start())
