"""The two models side by side: `.venv/bin/python -m bench.models [--out bench/results]`.

For MobileNetV2 and InceptionV3, in one run on one machine: native TensorFlow's step (the
command line's: the engine over TfBackend) at 256 and 512 px; the page's step on wasm at 256
px with its gradient's cosine to native's on the same image and shift (a time without a
correct result is not reported as one); the memory the page's model holds and a step's peak
on wasm; and the first dream: from opening `?model=...&sample=chelsea&autostart` on a cold
cache to the finished dream (download, start-up, the whole default dream). Writes
bench/results/models.json and models.md; the README's figures come from the JSON.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from dreamengine.presets import MODEL_NAMES
from scripts import REPO
from scripts.serving import launch, serve

SHIFT = (5, 9)
READY = "() => window.dreamframe && window.dreamframe.engine"

# One page step from the coffee sample at `size`, read with `await data()`.
PAGE_STEP = """async ([size, options, dy, dx, repeats]) => {
  const { tf, engine } = window.dreamframe;
  const img = new Image(); img.src = 'samples/coffee.jpg'; await img.decode();
  const x = tf.tidy(() => tf.image.resizeBilinear(tf.browser.fromPixels(img).toFloat(),
    [size, size], false, true).div(127.5).sub(1).expandDims(0));
  const times = []; let gradient = null; let peak = 0;
  for (let i = 0; i <= repeats; i++) {
    const start = performance.now();
    const profile = await tf.profile(async () => {
      const [updated, grad] = await engine.step(x, options, dy, dx);
      await updated.data();
      if (i === 0) gradient = Array.from(await grad.data());
      tf.dispose([updated, grad]);
    });
    times.push(performance.now() - start);
    peak = Math.max(peak, profile.peakBytes);
  }
  x.dispose();
  return { times: times.slice(1), first: times[0], gradient, peak,
           held: tf.memory().numBytes };
}"""


def coffee(size: int) -> object:
    """The coffee sample resized as the page resizes it (bilinear, half-pixel centres)."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    pixels = np.asarray(Image.open(REPO / "web/samples/coffee.jpg").convert("RGB"), np.float32)
    return tf.image.resize(pixels[None], (size, size)) / 127.5 - 1.0


def native(model: str, sizes: list, repeats: int) -> dict:
    """Median ms per native step, and the 256 px gradient for the page's correctness check."""
    import numpy as np

    from dreamengine import presets
    from dreamengine.objective import Objective
    from dreamengine.render import gradient_step
    from dreamengine.transforms import Transforms
    from native import tf_backend

    loaded, manifest = tf_backend.load_model(REPO / "models" / model / "manifest.json")
    ops = tf_backend.TfBackend(loaded, manifest)
    objective = Objective(presets.for_model(model)["default"]["weights"])
    result = {"ms": {}, "gradient": None}
    for size in sizes:
        image = coffee(size)
        times = []
        for i in range(repeats + 1):
            start = time.perf_counter()
            updated, grad, _ = gradient_step(ops, image, objective, 0.02, Transforms(0, 512),
                                             SHIFT, (-1.0, 1.0))
            np.asarray(updated)
            times.append((time.perf_counter() - start) * 1000)
            if i == 0 and size == 256:
                result["gradient"] = np.asarray(grad).ravel()
        result["ms"][str(size)] = statistics.median(times[1:])
    return result


def page(browser: object, url: str, model: str, reference: object, repeats: int) -> dict:
    """The page's figures for one model on wasm."""
    import numpy as np

    from dreamengine import presets

    context = browser.new_context()
    tab = context.new_page()
    start = time.perf_counter()
    tab.goto(f"{url}index.html?backend=wasm&model={model}&sample=chelsea&autostart")
    tab.wait_for_function("() => document.getElementById('status').textContent"
                          ".startsWith('Done')", timeout=600_000)
    first_dream = time.perf_counter() - start
    options = json.dumps({"weights": presets.for_model(model)["default"]["weights"],
                          "jitter": 0, "tile_size": 512, "step_size": 0.02})
    step = tab.evaluate(PAGE_STEP, [256, options, SHIFT[0], SHIFT[1], repeats])
    context.close()
    got = np.asarray(step["gradient"])
    cosine = float(got @ reference / np.linalg.norm(got) / np.linalg.norm(reference))
    correct = cosine >= 0.999
    return {"first_dream_s": first_dream, "cosine": cosine, "correct": correct,
            "step_ms_256": statistics.median(step["times"]) if correct else None,
            "first_step_ms_256": step["first"] if correct else None,
            "peak_step_bytes_256": step["peak"], "held_bytes": step["held"]}


def markdown(results: dict) -> str:
    """The report: one row per model."""
    lines = [f"# Two models, {results['date']}", "", results["machine"], "",
             "| model | download | native step 256 / 512 px | page step on wasm, 256 px "
             "(cosine to native) | wasm memory held / step peak | first dream (cold) |",
             "|---|---|---|---|---|---|"]
    for model, r in results["models"].items():
        step = (f"{r['page']['step_ms_256']:.0f} ms ({r['page']['cosine']:.4f})"
                if r["page"]["correct"] else f"wrong result (cosine {r['page']['cosine']:.3f})")
        lines.append(
            f"| {model} | {r['size_bytes'] / 1e6:.1f} MB | {r['native']['256']:.0f} / "
            f"{r['native']['512']:.0f} ms | {step} | {r['page']['held_bytes'] / 1e6:.0f} / "
            f"{r['page']['peak_step_bytes_256'] / 1e6:.0f} MB | "
            f"{r['page']['first_dream_s']:.1f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure both models, write models.json and models.md."""
    parser = argparse.ArgumentParser(prog="python -m bench.models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from bench.__main__ import machine
    from scripts import build_site

    m = machine()
    results = {"date": datetime.date.today().isoformat(),
               "machine": f"{m['cpu']}, {m['cores']} cores, {m['chromium']} headless "
                          f"(wasm, no threads); load {os.getloadavg()[0]:.1f} at the start",
               "models": {}}
    grads = {}
    for model in MODEL_NAMES:
        print(f"native {model} ...", flush=True)
        figures = native(model, [256, 512], args.repeats)
        grads[model] = figures["gradient"]
        size = json.loads((REPO / "models" / model / "manifest.json").read_text())
        results["models"][model] = {"native": figures["ms"],
                                    "size_bytes": size["model"]["size_bytes"]}
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        site = Path(scratch) / "site"
        build_site.build(site)
        server, url = serve(site)
        browser = launch(playwright)
        try:
            for model in MODEL_NAMES:
                print(f"page {model} ...", flush=True)
                results["models"][model]["page"] = page(browser, url, model, grads[model],
                                                        args.repeats)
        finally:
            browser.close()
            server.shutdown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "models.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (args.out / "models.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
