"""For people WITH a real GPU: `python -m bench.gpu_check [--headed] [--chromium PATH]`.

No GPU was lent to this project's sessions, so its WebGL/WebGPU figures come from software
adapters, which say nothing about a real GPU's speed. This runs the same check and timings
as the benchmark's browser rows on whatever GPU the browser has: Chromium launched with the
flags that enable the GPU headless (`--enable-gpu --ignore-gpu-blocklist --use-angle=vulkan
--enable-features=Vulkan --enable-unsafe-webgpu`), each GPU backend's gradient (the page's
own step) compared with the cpu backend's on the same image and roll (cosine >= 0.999,
nothing zero or NaN, else "wrong result" and no speed), first and steady step times, and the
adapter's own name as the page detects it. Writes bench/results/gpu-<adapter>.json.
Needs the built site's inputs only (no TensorFlow): `scripts/setup.sh test` is enough.
"""

import argparse
import datetime
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

from bench import steps
from bench.__main__ import finite, write_images
from scripts import REPO, build_site
from scripts.serving import CHROMIUM, CHROMIUM_ARGS, serve

GPU_FLAGS = ["--enable-gpu", "--ignore-gpu-blocklist", "--enable-unsafe-webgpu"]


def angle_flags(angle: str) -> list:
    """ANGLE's backend for WebGL. Vulkan is what headless Chromium needs to reach a real GPU
    on Linux; without a Vulkan driver WebGL then does not start at all (seen on this
    project's GPU-less machines), so `--angle default` leaves Chromium's own choice."""
    if angle == "default":
        return []
    return [f"--use-angle={angle}"] + (["--enable-features=Vulkan"] if angle == "vulkan" else [])


def slug(name: str) -> str:
    """A file-name-safe form of an adapter name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "unknown"


def check(browser: object, url: str, sizes: list, repeats: int) -> dict:
    """cpu reference gradients, then each GPU backend timed and checked against them."""
    references = {}
    page = steps.open_page(browser, url, "cpu")
    for size in sizes:
        print(f"cpu reference {size} px ...", flush=True)
        references[size] = steps.run_steps(page, f"{url}bench/coffee-{size}.png", 0,
                                           True)["grad"]
    page.context.close()
    results = {}
    for backend in ("webgpu", "webgl"):
        try:
            page = steps.open_page(browser, url, backend)
        except Exception as error:
            results[backend] = {"error": str(error).splitlines()[0]}
            continue
        row = {"sizes": {}}
        for size in sizes:
            print(f"{backend} {size} px ...", flush=True)
            cell = steps.step_row(page, f"{url}bench/coffee-{size}.png", size, repeats,
                                  references[size])
            row["device"], row["software"] = cell.pop("device"), cell.pop("software")
            row["sizes"][str(size)] = cell
            print(f"  {json.dumps({k: v for k, v in cell.items() if k != 'times_ms'})}",
                  flush=True)
        page.context.close()
        results[backend] = row
    return results


def main(argv: list[str] | None = None) -> int:
    """Launch Chromium with GPU flags, check and time, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chromium", default=CHROMIUM, help="the Chromium or Chrome to run")
    parser.add_argument("--headed", action="store_true", help="show the window")
    parser.add_argument("--angle", default="vulkan",
                        help="ANGLE backend for WebGL: vulkan, gl, metal, d3d11, or default")
    parser.add_argument("--sizes", default="128,256,512")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    sizes = [int(s) for s in args.sizes.split(",") if s]
    scratch = Path(tempfile.mkdtemp(prefix="dreamframe-gpu-"))
    try:
        site = scratch / "site"
        build_site.build(site)
        write_images(site / "bench", sizes)
        server, url = serve(site)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, headless=not args.headed,
                    args=CHROMIUM_ARGS + GPU_FLAGS + angle_flags(args.angle))
                results = check(browser, url, sizes, args.repeats)
                version = browser.version
                browser.close()
        finally:
            server.shutdown()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    devices = [r for r in results.values() if "device" in r]
    hardware = [r for r in devices if not r["software"]]
    name = (hardware or devices or [{"device": "none"}])[0]["device"]
    out = args.out / f"gpu-{slug(name)}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"date": datetime.date.today().isoformat(), "browser": version,
              "flags": GPU_FLAGS + angle_flags(args.angle),
              "reference": "tfjs cpu backend, same image and roll",
              "hardware_gpu": bool(hardware), "backends": results}
    out.write_text(json.dumps(finite(record), indent=2) + "\n")
    print(f"wrote {out}" + ("" if hardware else " (no hardware GPU was found: software only)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
