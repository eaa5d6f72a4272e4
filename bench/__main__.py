"""Run the benchmark: `.venv/bin/python -m bench [--skip-huge] [--out bench/results]`.

Everything is measured in one go on one machine, browser figures beside native ones, and
written as JSON and a Markdown table (bench/results/latest.json, latest.md). Not a test:
timings on shared machines are noisy, so only ratios measured side by side mean much.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "pyscript_app"), str(REPO / "tests"), str(REPO / "scripts")]

import build_site  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

from bench import dreams, startup, steps  # noqa: E402

STEP_SIZES = (256, 512, 1024)
SCALING_SIZES = (256, 512, 1024, 1536, 2048)
SLOW_BACKENDS = ("cpu", "webgl", "webgpu")  # measured at 256 px only: seconds per step here


def machine() -> dict:
    """What ran the benchmark."""
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
    return {"date": datetime.date.today().isoformat(), "cpu": cpu, "cores": os.cpu_count(),
            "memory": memory, "os": platform.platform(), "python": platform.python_version(),
            "chromium": chromium[0] if chromium else "unknown", "gpu": "none"}


def open_page(browser: object, url: str, backend: str) -> object:
    """The built page on one backend, engine ready. "wasm-threads": wasm in a page made
    cross-origin isolated by the service worker (web/sw.js), so tfjs runs its threaded build."""
    page = browser.new_context().new_page()
    if backend == "wasm-threads":
        page.goto(f"{url}index.html?backend=wasm&threads=now")
        page.wait_for_function("() => self.crossOriginIsolated && window.dreamframe"
                               " && window.dreamframe.engine", timeout=120_000)
        return page
    page.goto(f"{url}index.html?backend={backend}")
    page.wait_for_function("() => window.dreamframe && window.dreamframe.engine",
                           timeout=120_000)
    return page


def run(args: argparse.Namespace) -> dict:
    """Every measurement, in one browser and one process."""
    from playwright.sync_api import sync_playwright

    results = {"machine": machine()}
    print("native TensorFlow ...", flush=True)
    native = steps.native_ms(list(STEP_SIZES))
    results["native_ms"] = native
    with build_site.temporary_site() as url:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS + ["--enable-unsafe-webgpu"])
            results["browser_ms"] = {}
            for backend in ("wasm", "wasm-threads") + SLOW_BACKENDS:
                sizes = STEP_SIZES if backend.startswith("wasm") else (256,)
                try:
                    page = open_page(browser, url, backend)
                except Exception as error:  # a backend this browser does not have
                    results["browser_ms"][backend] = {"error": str(error).splitlines()[0]}
                    continue
                figures = {}
                for size in sizes:
                    print(f"{backend} {size} px ...", flush=True)
                    figures[size] = steps.browser_ms(
                        page, size, repeats=5 if backend.startswith("wasm") else 2)
                results["browser_ms"][backend] = figures
                if backend == "wasm":
                    print("python vs js loop ...", flush=True)
                    results["loop"] = {size: {"python_ms": steps.browser_ms(page, size),
                                              "js_ms": steps.js_ms(page, size)}
                                       for size in (256, 512)}
                    print("scaling ...", flush=True)
                    results["scaling_ms"] = {size: figures.get(size) or steps.browser_ms(
                        page, size, repeats=3) for size in SCALING_SIZES}
                page.context.close()
            print("cold start ...", flush=True)
            results["startup"] = {name: startup.measure(browser, url, name)
                                  for name in ("micropython", "pyodide")}
            print("full dreams ...", flush=True)
            sides = [(1024, 1024)] + ([] if args.skip_huge else [(4096, 4096)])
            results["dreams"] = {f"{w}x{h}": dreams.full_dream(browser, url, w, h)
                                 for w, h in sides}
            browser.close()
    return results


def table(results: dict) -> str:
    """The Markdown report."""
    m = results["machine"]
    native = results["native_ms"]
    lines = [f"# Benchmark, {m['date']}", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}; "
             f"{m['chromium']} headless; GPU: {m['gpu']}.", "",
             "## ms per gradient step (median after a warm-up; default objective)", "",
             "| backend | " + " | ".join(f"{s} px" for s in STEP_SIZES) + " |",
             "|---|" + "---|" * len(STEP_SIZES),
             "| native TensorFlow (graph mode) | "
             + " | ".join(f"{native[s]:.0f}" for s in STEP_SIZES) + " |"]
    for backend, figures in results["browser_ms"].items():
        if "error" in figures:
            lines.append(f"| tfjs {backend} | not available: {figures['error']} |")
            continue
        cells = [f"{figures[s]:.0f} ({figures[s] / native[s]:.1f}x)" if s in figures else "-"
                 for s in STEP_SIZES]
        lines.append(f"| tfjs {backend} (ratio to native) | " + " | ".join(cells) + " |")
    loop = results.get("loop", {})
    lines += ["", "## Python-driven loop (PyScript) against the same loop in plain JS, wasm", "",
              "| side | Python ms | JS ms | ratio |", "|---|---|---|---|"]
    for size, f in loop.items():
        lines.append(f"| {size} px | {f['python_ms']:.0f} | {f['js_ms']:.0f} | "
                     f"{f['python_ms'] / f['js_ms']:.2f} |")
    lines += ["", "## Cold start of the built page (localhost, empty cache, median of 3)", "",
              "| interpreter | interpreter ready | model ready | first dream frame | "
              "bytes before it |", "|---|---|---|---|---|"]
    for name, s in results["startup"].items():
        lines.append(f"| {name} | {s['interpreter'] / 1000:.2f} s | {s['model'] / 1000:.2f} s"
                     f" | {s['first'] / 1000:.2f} s | {s['bytes'] / 1e6:.1f} MB |")
    lines += ["", "## Full default dream on wasm", "",
              "| image | wall time | peak tfjs bytes | wasm heap at end |", "|---|---|---|---|"]
    for name, d in results["dreams"].items():
        if "error" in d:
            lines.append(f"| {name} | failed: {d['error']} | | |")
            continue
        lines.append(f"| {name} | {d['seconds']:.0f} s | {d['peak_tensor_bytes'] / 1e6:.0f} MB"
                     f" | {d['wasm_heap_bytes'] / 1e6:.0f} MB |")
    lines += ["", "## Time per step against pixel count (wasm, tiles of 512 px)", "",
              "| side | megapixels | ms per step | ms per megapixel |", "|---|---|---|---|"]
    for size, ms in results["scaling_ms"].items():
        mp = int(size) ** 2 / 1e6
        lines.append(f"| {size} | {mp:.2f} | {ms:.0f} | {ms / mp:.0f} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write JSON and Markdown."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--skip-huge", action="store_true",
                        help="leave out the 4096x4096 dream (about 15 minutes on wasm)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    os.chdir(REPO)
    results = run(args)
    report = table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
