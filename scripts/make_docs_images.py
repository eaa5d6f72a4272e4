"""Render docs/dreams/: reference dreams of real photos, natively, with the command line.

    .venv/bin/python scripts/make_docs_images.py            # both parts
    .venv/bin/python scripts/make_docs_images.py --models   # only the two-model comparison

Uses the command line (`python -m native.dream`), so the pictures show exactly what the
defaults give. Two parts:

* depths: MobileNetV2's default dream of three photos at three depths. Photos ship inside
  scikit-image: chelsea (a cat) and coffee are scikit-image's own sample images (CC0 /
  public domain per its data README), astronaut is NASA's Eileen Collins (public domain).
* models: the page's three samples (web/samples/*.jpg, the same photos) at 450 px wide,
  dreamt by MobileNetV2 and by InceptionV3, each with its default layers and the SAME
  schedule (octaves, scale, steps, step size, jitter, seed), and `docs/dreams/models.md`
  with what each costs, measured here: download size (the manifest's `size_bytes`), ms per
  gradient step at 256 and 512 px (bench.steps.native_ms, median of 5, 2 rounds, the
  better kept) and each dream's wall time as the command line reports it.
"""

import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from dreamengine import presets
from scripts import REPO, script_parser

OUT = REPO / "docs" / "dreams"
# Three depths, shallow to deep: which layers the objective weighs (see presets.py).
DEPTHS = {
    "shallow": "block_2_expand_relu=0.5,block_5_expand_relu=1",
    "default": None,  # presets.DEFAULT
    "deep": "block_12_expand_relu=1,block_15_expand_relu=1",
}
SAMPLES = ("chelsea", "coffee", "astronaut")
MODELS = presets.MODEL_NAMES
NAMES = {model["name"]: model["network"] for model in presets.MODELS}
WIDTH = 450
SCHEDULE_KEYS = ("norm", "octaves", "octave_scale", "steps", "step_size", "jitter")


def dream(photo: Path, target: Path, *extra: str) -> float:
    """Run the command line; return the dream's own time (its last octave line), seconds."""
    command = [sys.executable, "-m", "native.dream", str(photo), str(target), *extra]
    result = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    times = re.findall(r"^octave \d+/\d+: loss [-0-9.]+ \(([0-9.]+) s\)$", result.stdout, re.M)
    print(result.stdout.strip().splitlines()[-1], flush=True)
    return float(times[-1])


def depths() -> None:
    """MobileNetV2 at three depths on scikit-image's photos (full size)."""
    from PIL import Image
    from skimage import data

    for name in SAMPLES:
        photo = OUT / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(photo)
        for depth, layers in DEPTHS.items():
            dream(photo, OUT / f"{name}-{depth}.png", *(["--layers", layers] if layers else []))


def models() -> None:
    """Both models on the page's samples at matched settings, and docs/dreams/models.md."""
    defaults = {m: presets.for_model(m)["default"] for m in MODELS}
    schedules = {m: {k: d[k] for k in SCHEDULE_KEYS} for m, d in defaults.items()}
    if len({json.dumps(s, sort_keys=True) for s in schedules.values()}) != 1:
        raise SystemExit(f"the models' default schedules differ: {schedules}")
    seconds: dict[tuple[str, str], float] = {}
    sizes: dict[str, str] = {}
    for name in SAMPLES:
        for model in MODELS:
            target = OUT / f"{name}-{model}.png"
            seconds[name, model] = dream(REPO / "web" / "samples" / f"{name}.jpg", target,
                                         "--model", model, "--max-side", str(WIDTH))
            from PIL import Image

            with Image.open(target) as image:
                sizes[name] = f"{image.width}x{image.height}"
    steps = step_times()
    write_report(defaults, schedules[MODELS[0]], seconds, sizes, steps)


def step_times() -> dict[str, dict[int, float]]:
    """ms per step at 256 and 512 px for each model: 2 alternating rounds, best median kept
    (other work on a shared machine only ever slows a round down)."""
    from bench import steps

    best: dict[str, dict[int, float]] = {}
    for _ in range(2):
        for model in MODELS:
            measured = steps.native_ms([256, 512], repeats=5, model=model)
            best[model] = {size: min(ms, best.get(model, {}).get(size, ms))
                           for size, ms in measured.items()}
    return best


def write_report(defaults: dict, schedule: dict, seconds: dict, sizes: dict,
                 step_ms: dict) -> None:
    """docs/dreams/models.md: the comparison, every figure as measured by this run."""
    manifests = {m: json.loads((REPO / "models" / m / "manifest.json").read_text())
                 for m in MODELS}
    lines = [
        "# MobileNetV2 and InceptionV3, side by side",
        "",
        "Written by `scripts/make_docs_images.py --models` (do not edit by hand): the page's",
        f"samples scaled to {WIDTH} px wide, each model's default layers, the same schedule:",
        "`" + ", ".join(f"{k}={v}" for k, v in schedule.items()) + "`, seed 0, native",
        f"TensorFlow on {platform.machine()} ({_cpu()}), {time.strftime('%Y-%m-%d')}.",
        "",
        "| photo | MobileNetV2 | InceptionV3 |",
        "|---|---|---|",
    ]
    for name in SAMPLES:
        cells = [f'<img src="../../web/samples/{name}.jpg" width="260" alt="{name}">']
        cells += [f'<img src="{name}-{m}.png" width="260" alt="{name}, {NAMES[m]}">'
                  for m in MODELS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| | " + " | ".join(NAMES[m] for m in MODELS) + " |", "|---|---|---|"]
    lines.append("| default layers | " + " | ".join(
        ", ".join(f"{k} {v:g}" for k, v in defaults[m]["weights"].items()) for m in MODELS)
        + " |")
    lines.append("| download (model.json + weights) | " + " | ".join(
        f"{manifests[m]['model']['size_bytes'] / 1e6:.1f} MB" for m in MODELS) + " |")
    lines.append("| smallest photo side | " + " | ".join(
        f"{manifests[m]['input']['min_side']} px" for m in MODELS) + " |")
    for size in (256, 512):
        lines.append(f"| ms per step at {size}x{size} | " + " | ".join(
            f"{step_ms[m][size]:.0f}" for m in MODELS) + " |")
    lines.append("| step time against MobileNetV2's | 1 | " + ", ".join(
        f"{step_ms[MODELS[1]][size] / step_ms[MODELS[0]][size]:.1f}x at {size} px"
        for size in (256, 512)) + " |")
    for name in SAMPLES:
        lines.append(f"| whole dream, {name} {sizes[name]} (40 steps) | " + " | ".join(
            f"{seconds[name, m]:.1f} s" for m in MODELS) + " |")
    lines += ["", "Step: one whole gradient step of the engine (roll, gradient of the default "
              "objective, roll back, normalise, update, clip), median of 5 after a warm-up, "
              "on the coffee photo resized to a square; dream times include tracing the "
              "graph for each octave's size. The machine is shared, so compare the two "
              "columns, not these figures with other machines'.", ""]
    (OUT / "models.md").write_text("\n".join(lines))
    print("\n".join(lines))


def _cpu() -> str:
    """The CPU's model name and the cores this process may use."""
    import os

    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        model = found.group(1).strip() if found else model
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def main(argv: list[str] | None = None) -> int:
    """Write the photos and their dreams under docs/dreams/."""
    parser = script_parser(__doc__)
    parser.add_argument("--models", action="store_true",
                        help="only the two-model comparison (and docs/dreams/models.md)")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.models:
        depths()
    models()
    return 0


if __name__ == "__main__":
    sys.exit(main())
