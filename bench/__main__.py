"""Run the benchmark: `.venv/bin/python -m bench [--quick | --full] [--out bench/results]`.

Everything is measured in one go on one machine, browser figures beside native ones, and
written as JSON and Markdown (bench/results/latest.json, latest.md); the figures of the README
and docs/ are generated from that JSON (scripts/readme_figures.py). Not a test: timings on a shared
machine are noisy, so ratios measured side by side in one run are what count, and every
timing carries a correctness check from the same run.

Default: about 15 minutes on 2 cores. `--quick`: about 5 (fewer sizes and repeats, no
scaling table, no 1024x1024 dream). `--full`: the default plus a 4096x4096 dream (12+ min).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from bench import dreams, report, startup, steps, waits, webgl
from scripts import REPO, build_site
from scripts.serving import CHROMIUM, CHROMIUM_ARGS, serve

# What each mode measures. Software WebGL/WebGPU and the cpu backend take seconds per step
# here: small sizes, few repeats.
PLANS = {
    "quick": {"native_sizes": [128, 256, 512], "native_repeats": 3, "old_size": 512,
              "wasm_sizes": [256, 512], "wasm_repeats": 3, "slow_sizes": [128],
              "slow_repeats": 1, "loop_sizes": [256], "scaling_sizes": [],
              "dreams": [(451, 300)], "webgl_dreams": 3, "shape_uniforms": False,
              "startup_runs": 1,
              "gpu_before_after": {"size": 256, "rounds": 2, "tuned_transpose": False}},
    "default": {"native_sizes": [128, 256, 512, 1024], "native_repeats": 5, "old_size": 512,
                "wasm_sizes": [256, 512, 1024], "wasm_repeats": 5, "slow_sizes": [128, 256],
                "slow_repeats": 2, "loop_sizes": [256, 512], "scaling_sizes": [1536, 2048],
                "dreams": [(451, 300), (1024, 1024)], "webgl_dreams": 10,
                "shape_uniforms": True, "startup_runs": 3,
                "gpu_before_after": {"size": 256, "rounds": 4, "tuned_transpose": True}},
}
PLANS["full"] = dict(PLANS["default"], dreams=PLANS["default"]["dreams"] + [(4096, 4096)])
BROWSER_BACKENDS = ("wasm", "wasm-threads", "cpu", "webgl", "webgpu")

# What the project aims for (docs/benchmark.md); the report says met or not.
GOALS = {"first_frame_s": 2.5, "first_frame_mb": 8.0, "python_js_ratio": 1.05,
         "wasm_vs_native_512": 2.5, "old_vs_new_native": 2.5,
         # issue 18: what a GPU visitor waits for
         "webgl_first_over_again": 1.5, "webgpu_first_over_again": 1.3,
         "new_size_share": 0.05, "gpu_step_speedup": 1.25}


def machine() -> dict:
    """What ran the benchmark (the GPU part is filled in from what the browser detects)."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True,
                              check=False).stdout.strip().splitlines()[-1:]
    load = os.getloadavg()[0]
    return {"date": datetime.date.today().isoformat(), "cpu": cpu, "cores": os.cpu_count(),
            "memory": memory, "os": platform.platform(), "python": platform.python_version(),
            "chromium": chromium[0] if chromium else "unknown", "load_at_start": load}


def write_images(folder: Path, sizes: list) -> None:
    """The benchmark's inputs as PNG (lossless): native TensorFlow and the browser read the
    same pixels, so their gradients can be compared."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    coffee = Image.open(REPO / "web/samples/coffee.jpg").convert("RGB")
    for size in sizes:
        coffee.resize((size, size), Image.BILINEAR).save(folder / f"coffee-{size}.png")
    chelsea = Image.open(REPO / "web/samples/chelsea.jpg").convert("RGB")
    chelsea.resize((128, 96), Image.LANCZOS).save(folder / "chelsea-128x96.png")


def run_native(plan: dict, images: Path, grads: Path, scratch: Path) -> dict:
    """Native figures, 2 threads then 1 thread, each in its own process (bench/native.py)."""
    result = {}
    for threads in (2, 1):
        out = scratch / f"native-{threads}.json"
        command = [sys.executable, "-m", "bench.native", "--threads", str(threads),
                   "--images", str(images), "--repeats", str(plan["native_repeats"]),
                   "--out", str(out)]
        if threads == 2:
            command += ["--sizes", ",".join(map(str, plan["native_sizes"])),
                        "--old", str(plan["old_size"]), "--save-grads", str(grads), "--facts"]
        else:
            command += ["--sizes", ",".join(str(s) for s in plan["native_sizes"] if s >= 256)]
        print(f"native TensorFlow, {threads} thread(s) ...", flush=True)
        subprocess.run(command, cwd=REPO, check=True, stderr=sys.stderr,
                       stdout=subprocess.DEVNULL)
        result[str(threads)] = json.loads(out.read_text())
    return result


def reference(grads: Path, size: int) -> object:
    """Native TensorFlow's gradient for the coffee image at `size`, or None."""
    import numpy as np

    path = grads / f"coffee-{size}.npy"
    return np.load(path).ravel() if path.is_file() else None


def run_browser(plan: dict, url: str, grads: Path) -> dict:
    """Every browser measurement, in one Chromium with the software WebGPU adapter exposed."""
    from playwright.sync_api import sync_playwright

    results = {"browser": {}}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS + ["--enable-unsafe-webgpu"])
        for backend in BROWSER_BACKENDS:
            wasm = backend.startswith("wasm")
            sizes = plan["wasm_sizes"] if wasm else plan["slow_sizes"]
            repeats = plan["wasm_repeats"] if wasm else plan["slow_repeats"]
            try:
                page = open_page_timed(browser, url, backend)
            except Exception as error:  # a backend this browser does not have
                results["browser"][backend] = {"error": str(error).splitlines()[0]}
                continue
            row = {"sizes": {}}
            if backend == "wasm-threads":
                row["threads"] = steps.thread_proof(page)
                print(f"  threads: {row['threads']}", flush=True)
            if backend != "wasm-threads" or row["threads"]["threaded_build_ran"]:
                for size in sizes:
                    print(f"{backend} {size} px ...", flush=True)
                    cell = steps.step_row(page, f"{url}bench/coffee-{size}.png", size,
                                          repeats, reference(grads, size))
                    row["device"], row["software"] = cell.pop("device"), cell.pop("software")
                    row["sizes"][str(size)] = cell
                    print(f"  {json.dumps({k: v for k, v in cell.items() if k != 'times_ms'})}",
                          flush=True)
            if backend in ("webgl", "webgpu"):
                size = plan["gpu_before_after"]["size"]
                print(f"{backend} {size} px, step before and after issue 18 ...", flush=True)
                row["before_after"] = webgl.step_before_after(
                    page, f"{url}bench/coffee-{size}.png", plan["gpu_before_after"]["rounds"],
                    reference(grads, size), plan["gpu_before_after"]["tuned_transpose"])
                row["before_after"]["size"] = size
            if backend == "wasm":
                print("python vs js loop ...", flush=True)
                results["loop"] = {str(size): steps.js_ratio(
                    page, f"{url}bench/coffee-{size}.png", size, plan["wasm_repeats"])
                    for size in plan["loop_sizes"]}
                print("scaling ...", flush=True)
                results["scaling_ms"] = {str(size): steps.step_row(
                    page, f"{url}bench/coffee-{size}.png", size, 2, None, check=False)
                    ["steady_ms"] for size in plan["scaling_sizes"]}
                print("where a 512 px step goes ...", flush=True)  # last: it wraps kernels
                row["profile_512"] = steps.kernel_profile(
                    page, f"{url}bench/coffee-512.png", plan["wasm_repeats"])
            page.context.close()
            results["browser"][backend] = row
        if "error" not in results["browser"].get("webgl", {"error": 1}):
            print("webgl in practice ...", flush=True)
            results["webgl"] = run_webgl(browser, url, plan)
        results["waits"] = {}
        for backend in ("webgl", "webgpu"):
            if "error" in results["browser"].get(backend, {"error": 1}):
                continue
            print(f"what a visitor waits for on {backend} ...", flush=True)
            try:
                results["waits"][backend] = waits.measure(browser, url, backend,
                                                          Path(tempfile.mkdtemp()))
            except Exception as error:
                results["waits"][backend] = {"error": str(error).splitlines()[0]}
        print("cold start ...", flush=True)
        results["startup"] = {name: startup.measure(browser, url, name, plan["startup_runs"])
                              for name in ("micropython", "pyodide")}
        print("full dreams ...", flush=True)
        results["dreams"] = {f"{w}x{h}": dreams.full_dream(
            browser, url, w, h, "samples/chelsea.jpg" if (w, h) == (451, 300)
            else "samples/coffee.jpg") for w, h in plan["dreams"]}
        browser.close()
    return results


def open_page_timed(browser: object, url: str, backend: str) -> object:
    """steps.open_page, with a line of progress."""
    print(f"opening the page on {backend} ...", flush=True)
    return steps.open_page(browser, url, backend)


def run_webgl(browser: object, url: str, plan: dict) -> dict:
    """WebGL over whole dreams of a small photo (bench/webgl.py), each in a fresh page."""
    photo = f"{url}bench/chelsea-128x96.png"
    figures = {}
    for key, on in (("shape_uniforms_off", False), ("shape_uniforms_on", True)):
        if on and not plan["shape_uniforms"]:
            continue
        page = steps.open_page(browser, url, "webgl")
        try:
            figures[key] = webgl.measure(page, photo, plan["webgl_dreams"] if not on else 1, on)
        except Exception as error:
            figures[key] = {"error": str(error).splitlines()[0]}
        page.context.close()
    page = steps.open_page(browser, url, "webgl")
    try:  # a first photo, the same again, another size (with the page's shape uniforms)
        figures["sizes"] = webgl.sizes(page, f"{url}samples/chelsea.jpg")
    except Exception as error:
        figures["sizes"] = {"error": str(error).splitlines()[0]}
    page.context.close()
    return figures


def detected_gpus(browser_results: dict) -> list:
    """The GPU-backed backends as the page named them (web/js/backends.js), never typed."""
    return [{"backend": name, "device": row.get("device"), "software": row.get("software")}
            for name, row in browser_results.items()
            if name in ("webgl", "webgpu") and "device" in row]


def finite(value: object) -> object:
    """`value` with every NaN or infinity replaced by None: JSON has neither."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    """Run, write JSON and Markdown, print the Markdown."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a ~5 minute subset")
    mode.add_argument("--full", action="store_true", help="add the 4096x4096 dream")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    name = "quick" if args.quick else "full" if args.full else "default"
    plan = PLANS[name]
    os.chdir(REPO)
    started = time.monotonic()
    results = {"machine": machine(), "mode": name, "plan": plan, "goals": GOALS}
    scratch = Path(tempfile.mkdtemp(prefix="dreamframe-bench-"))
    try:
        site = scratch / "site"
        build_site.build(site)
        sizes = sorted(set(plan["native_sizes"] + plan["wasm_sizes"] + plan["slow_sizes"]
                           + plan["loop_sizes"] + plan["scaling_sizes"]))
        write_images(site / "bench", sizes)
        grads = scratch / "grads"
        results["native"] = run_native(plan, site / "bench", grads, scratch)
        server, url = serve(site)
        try:
            results.update(run_browser(plan, url, grads))
        finally:
            server.shutdown()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["machine"]["gpu"] = detected_gpus(results["browser"])
    results["machine"]["load_at_end"] = os.getloadavg()[0]
    results["minutes"] = (time.monotonic() - started) / 60
    results = finite(results)
    results["ratios"] = report.ratios(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    text = report.markdown(results)
    (args.out / "latest.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
