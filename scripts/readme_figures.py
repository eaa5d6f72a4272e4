"""Write the measured figures of README.md and docs/*.md from committed result files.

    .venv/bin/python scripts/readme_figures.py [--check]


Figures typed by hand drift from what was measured (the old README quoted a software WebGPU
step that was a gradient of zeros, and numbers no result file held). So every measured
figure in README.md and in docs/*.md lives between markers

    <!-- figures:NAME -->...<!-- /figures:NAME -->

and this script rewrites what is between them from bench/results/latest.json (the latest
`python -m bench`), bench/results/models.json (`python -m bench.models`),
bench/results/history.json (a dated historical record) and models/*/manifest.json.
Each block name belongs to exactly one place in one of those files, so a block can move
between them but never be copied; a name no renderer knows, a renderer whose block is
nowhere, and a marker without its partner are errors, because each means a figure that is
stale or silently missing. `--check` writes nothing and exits 1 when a file differs from
what it would write (tests/test_readme.py runs it). Standard library only.
"""

import json
import re
import sys
from pathlib import Path

from bench import report
from scripts import REPO, script_parser

README = REPO / "README.md"
DOCS = REPO / "docs"
RESULTS = REPO / "bench" / "results"
MODEL = REPO / "models" / "mobilenet_v2"
BLOCK = re.compile(r"(<!-- figures:(?P<name>[\w-]+) -->)(?P<body>.*?)(<!-- /figures:(?P=name) -->)",
                   re.DOTALL)
MARKER = re.compile(r"<!-- /?figures:[\w-]+ -->")


class BlockError(Exception):
    """A figures block that cannot be written: unknown, repeated, missing or unclosed."""


def documents() -> list[Path]:
    """README.md and every docs/*.md: the files whose figures blocks this script owns.

    docs/ is globbed rather than listed, so a new docs file gets its blocks checked without
    anyone remembering to add it here.
    """
    return [README, *sorted(DOCS.glob("*.md"))]


def load() -> dict:
    """Everything the figures come from."""
    return {"latest": json.loads((RESULTS / "latest.json").read_text()),
            "history": json.loads((RESULTS / "history.json").read_text()),
            "manifest": json.loads((MODEL / "manifest.json").read_text()),
            "models": json.loads((RESULTS / "models.json").read_text()),
            "engines": json.loads((RESULTS / "engines.json").read_text()),
            "video": json.loads((RESULTS / "video.json").read_text()),
            "weights_bytes": sum(p.stat().st_size for p in MODEL.glob("*.bin"))}


def _block(lines: list) -> str:
    """A multi-line block: its own lines between the markers."""
    return "\n" + "\n".join(lines) + "\n"


def startup(src: dict) -> str:
    """The interpreter comparison table (docs/interpreters.md)."""
    return _block(report.startup_lines(src["latest"]))


def wasm_speed(src: dict) -> str:
    """How much slower wasm is than native, and whole dreams on wasm (docs/engine.md, Limits)."""
    r = src["latest"]
    ratio = report.ratios(r)["wasm_vs_native_1_thread"].get("512")
    dreams = r.get("dreams", {})
    parts = [f"{ratio:.1f}x slower than one-thread native TensorFlow per step at 512 px on the"
             f" same CPU" if ratio else "(wasm against native: not measured in the latest run)"]
    for name, label in (("451x300", "a default dream of a 451x300 photo"),
                        ("1024x1024", "of a 1024x1024 one")):
        d = dreams.get(name)
        if d and "seconds" in d:
            parts.append(f"{label} in {d['seconds']:.0f} s")
    return ", ".join(parts) + f" on {r['machine']['cores']} shared cores ({r['machine']['date']})"


def huge_dream(src: dict) -> str:
    """The 4096x4096 dream: from the latest run with --full, else the dated record."""
    d = src["latest"].get("dreams", {}).get("4096x4096")
    when = "in the latest `python -m bench --full`"
    if not d or "seconds" not in d:
        d = src["history"]["dreams"]["4096x4096"]
        when = f"measured {src['history']['date']}, before issues 10 and 11"
    return (f"a 4096x4096 default dream completes on wasm in {d['seconds'] / 60:.0f} minutes "
            f"with a {d['wasm_heap_bytes'] / 1e9:.1f} GB wasm heap ({when})")


def model_size(src: dict) -> str:
    """The committed weights' size (docs/models.md, "Default layers")."""
    quantization = src["manifest"]["model"]["quantization"]
    return f"keeps the {quantization} model at {src['weights_bytes'] / 1e6:.1f} MB"


def quantization(src: dict) -> str:
    """The committed model's quantisation cost, from its manifest."""
    q = src["manifest"]["fidelity"]["quantization"]
    kind = src["manifest"]["model"]["quantization"]
    return f"{q['relative_error']:.1e} for the committed {kind} model"


def fact(name: str) -> object:
    """A phrase of report.facts_lines."""
    def render(src: dict) -> str:
        return report.facts_lines(src["latest"]).get(name, "(not measured in the latest run)")
    render.__doc__ = f"The engine figure {name!r} (bench/native.py, measure_facts)."
    return render


def threads(src: dict) -> str:
    """What the latest run found about wasm threads."""
    row = src["latest"]["browser"].get("wasm-threads", {})
    proof = row.get("threads")
    if not proof:
        return "the latest run could not open the threaded page"
    if not proof["threaded_build_ran"]:
        return f"in the latest run threads did not run: {proof['why_not']}"
    ratio = report.ratios(src["latest"])["wasm_threads_vs_native_2_threads"].get("512")
    wasm = src["latest"]["browser"]["wasm"]["sizes"].get("512", {}).get("steady_ms")
    threaded = row["sizes"].get("512", {}).get("steady_ms")
    return (f"in the latest run {proof['threads']} threads ran: {threaded:.0f} ms against "
            f"{wasm:.0f} ms without, {ratio:.1f}x two-thread native")


def benchmark(src: dict) -> str:
    """The Benchmark section's figures: native, every backend, goals, WebGL, the GPU."""
    r = src["latest"]
    ratio = report.ratios(r)
    lines = [report.machine_line(r), "", *report.native_table(r), "",
             *report.browser_table(r), ""]
    old = ratio["old_vs_new_native"]
    if old:
        lines += [f"Native TensorFlow: the engine's step now takes {old['new_ms']:.0f} ms at "
                  f"{old['size']} px with 2 threads against {old['old_ms']:.0f} ms for the "
                  f"pre-issue-11 step timed beside it: **{old['ratio']:.1f}x** faster.", ""]
    lines += ["Goals, against the honest baseline (the best native step: wasm without threads "
              "uses one core, so it is compared with one-thread native; wasm with threads with "
              "two-thread native):", "", *report.goals_lines(r), ""]
    profile = report.profile_lines(r)
    if profile:
        lines += ["Where a 512 px wasm step goes (`bench/steps.py` `kernel_profile`):", "",
                  *profile, ""]
    if report.hardware_gpu(r):
        lines.append("A hardware GPU was detected: see the WebGL and WebGPU rows above.")
    else:
        names = "; ".join(f"{g['backend']}: {g['device']}" for g in r["machine"].get("gpu", []))
        lines.append("No GPU was available to this project's sessions: no hardware WebGL/WebGPU"
                     " figures; the software adapters here say nothing about a real GPU's speed"
                     f" (detected by the page: {names or 'none'}).")
    waits = report.waits_lines(r)
    if waits:
        lines += ["", "What a GPU visitor waits for, through the page itself (`bench/waits.py`:"
                  " the page prepares a default dream by itself, then the photo chosen; a "
                  "dream of the cat sample at 192x128 with 4 octaves of 3 steps, the same "
                  "again, one at 160x224, a 12-frame zoom):", "", *waits]
    webgl = report.webgl_lines(r)
    if webgl:
        lines += ["", *webgl]
    return _block(lines)


def history(src: dict) -> str:
    """The dated record of what made the wasm step faster."""
    h = src["history"]
    lines = [f"A historical record ({h['date']}, {h['machine']}; `bench/results/history.json`),"
             f" not re-measured: {h['measure']}, with the code of its time.", "",
             "| change | ms at 512 px |", "|---|---|"]
    lines += [f"| {s['change']} | {s['ms']} |" for s in h["wasm_512_steps"]]
    p = h["profile_697_ms"]
    lines += ["", f"The `tf.profile` of the {p['step_ms']} ms step: tfjs's generic Relu6 "
              f"gradient about "
              f"{p['relu6_gradient_ms']} ms, Identity copies {p['identity_copies_ms']} ms "
              f"({p['identity_copies_per_step']} a step), Slice {p['slice_ms']} ms."]
    return _block(lines)


def models(src: dict) -> str:
    """The two models side by side (`python -m bench.models`)."""
    from bench import models as bench_models

    table = bench_models.markdown(src["models"]).splitlines()[2:]  # without its title
    return _block(["Measured by `python -m bench.models` (`bench/results/models.json`, "
                   f"{src['models']['date']}):", "", *table])


def engines(src: dict) -> str:
    """Firefox and WebKit as a visitor opens the page (`python -m bench.engines`)."""
    e = src["engines"]
    lines = [f"Measured by `python -m bench.engines` (`bench/results/engines.json`, "
             f"{e['date']}): the cat sample's default dream, timed from navigation; the "
             "change is how far the dream moved the photo (mean, 0-255), the errors those "
             "the page recorded.", "",
             "| engine | URL | backend | first dream frame | dream done | change | errors |",
             "|---|---|---|---|---|---|---|"]
    for run in e["runs"]:
        first = run["first_frame_ms"]
        lines.append(f"| {run['engine']} | `{run['url']}` | {run['backend']} | "
                     f"{'-' if first is None else f'{first / 1000:.1f} s'} | "
                     f"{run['done_ms'] / 1000:.1f} s | {run['mean_abs_change_255']:.1f} | "
                     f"{len(run['errors']) or 'none'} |")
    return _block(lines)


def video_coherence(src: dict) -> str:
    """Flicker, change and drift of a dreamt video, three ways (`python -m bench.video`)."""
    v = src["video"]
    names = {"flow": "with the flow (default)", "blend": "blended, no flow",
             "still": "each frame a still dream"}
    lines = [f"Measured by `python -m bench.video` (`bench/results/video.json`, {v['date']}), "
             f"natively, the test video at {v['size'][0]}x{v['size'][1]}, in 0-255 levels:", "",
             "| way | frames | flicker | change | brightness drift (largest, last) | "
             "seconds a frame |", "|---|---|---|---|---|---|"]
    for run in v["native"]:
        lines.append(f"| {names[run['way']]} | {run['frames']} | {run['flicker_255']:.1f} | "
                     f"{run['change_255']:.1f} | {run['drift_max_255']:.2f}, "
                     f"{run['drift_last_255']:+.2f} | {run['seconds_a_frame']:.2f} |")
    wasm = {run["flow"]: run for run in v["page"] if run["backend"] == "wasm"}
    lines += ["", f"In the page (wasm, the same run), {wasm[True]['frames']} frames read back "
              "from the videos it made (after their H.264 compression, which smooths both): "
              f"flicker {wasm[True]['flicker_255']:.1f} with the flow against "
              f"{wasm[False]['flicker_255']:.1f} with `video_flow=off`, change "
              f"{wasm[True]['change_255']:.1f} against {wasm[False]['change_255']:.1f}."]
    return _block(lines)


def video_speed(src: dict) -> str:
    """How fast a video is dreamt here, in the page and natively (`python -m bench.video`)."""
    v = src["video"]
    runs = {run["backend"]: run for run in v["page"] if run["flow"]}
    native = next(run for run in v["native"] if run["way"] == "flow")
    label = {"wasm": "WebAssembly (what the page picks here)",
             "webgl": "WebGL on SwiftShader (a GPU emulated on the CPU)"}
    parts = [f"{run['later_frame_s']:.2f} s a frame on {label.get(name, name)} (the first "
             f"frame, a whole dream, {run['first_frame_s']:.1f} s)"
             for name, run in sorted(runs.items(), key=lambda item: item[0] != "wasm")]
    return (f"Here (`python -m bench.video`, {v['date']}, this 2-core machine without a GPU, "
            f"the test video at {v['size'][0]}x{v['size'][1]}, default settings): the page "
            + " and ".join(parts) + f"; natively {native['seconds_a_frame']:.2f} s a frame. "
            "In the same run the page's videos decoded to "
            + "; ".join(f"{run['frames']}/{run['source_frames']} frames ({name})"
                        + (" with sound" if run["audio"] else " without sound")
                        + f", moved {run['change_255']:.1f} levels from the source"
                        for name, run in runs.items()) + ".")


RENDERERS = {"engines": engines, "video-coherence": video_coherence, "video-speed": video_speed,
             "models": models, "startup": startup, "wasm-speed": wasm_speed,
             "huge-dream": huge_dream,
             "model-size": model_size, "quantization": quantization,
             "tiles": fact("tiles"), "chelsea-change": fact("chelsea_change"),
             "chelsea-loss": fact("chelsea_loss"), "drift": fact("drift"),
             "threads": threads, "benchmark": benchmark, "history": history}


def block_names(text: str, where: str) -> list[str]:
    """The names of the blocks in one file, in order; a marker left unpaired is an error.

    An opening marker whose closing one is missing (or misspelt) would otherwise be skipped
    by the block pattern, leaving whatever follows it unchecked.
    """
    names = [m["name"] for m in BLOCK.finditer(text)]
    stray = MARKER.findall(BLOCK.sub(" ", text))
    if stray:
        raise BlockError(f"{where} has a figures marker without its partner: {stray[0]}")
    return names


def check_names(texts: dict[str, str]) -> None:
    """Every block name known, in exactly one place, and every renderer's block present.

    Checked before anything is rendered, so a broken layout is reported as such rather than
    as whatever a renderer makes of a result file.
    """
    seen: dict[str, str] = {}
    for where, text in texts.items():
        for name in block_names(text, where):
            if name not in RENDERERS:
                raise BlockError(f"{where} has an unknown figures block {name!r}")
            if name in seen:
                raise BlockError(f"figures block {name!r} appears twice: in {seen[name]} "
                                 f"and in {where}")
            seen[name] = where
    missing = sorted(set(RENDERERS) - set(seen))
    if missing:
        raise BlockError(f"figures block(s) in no file: {', '.join(missing)} (README.md or "
                         "docs/*.md must hold each once)")


def render(text: str, src: dict) -> str:
    """One file's text with every block rewritten (names are checked by check_names)."""
    def replace(match: re.Match) -> str:
        return f"{match[1]}{RENDERERS[match['name']](src)}{match[4]}"

    return BLOCK.sub(replace, text)


def render_all(texts: dict[str, str], src: dict) -> dict[str, str]:
    """Every file's text (keyed by its name) with its blocks rewritten from `src`."""
    check_names(texts)
    return {where: render(text, src) for where, text in texts.items()}


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md and docs/*.md, or with --check say whether they are up to date."""
    parser = script_parser(__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a file differs from what would be written")
    args = parser.parse_args(argv)
    paths = {str(path.relative_to(REPO)): path for path in documents()}
    texts = {where: path.read_text() for where, path in paths.items()}
    try:
        new = render_all(texts, load())
    except BlockError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    stale = [where for where in texts if new[where] != texts[where]]
    if args.check:
        for where in stale:
            print(f"{where}'s figures are out of date: run scripts/readme_figures.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for where in stale:
        paths[where].write_text(new[where])
    return 0


if __name__ == "__main__":
    sys.exit(main())
