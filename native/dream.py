"""Dream an image file into an image file with native TensorFlow.

    python -m native.dream photo.jpg dream.png [--model inception_v3] [--preset deep]
                                               [--layers block_8_expand_relu:1,...] [...]

The same algorithm and defaults as the page (`pyscript_app/dreamengine/`), without the
browser's memory limits: for batches, very large images, or the reference pictures in docs/.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dreamengine import presets  # noqa: E402
from dreamengine.objective import NORMS, Objective  # noqa: E402
from dreamengine.render import dream  # noqa: E402
from dreamengine.schedule import Schedule  # noqa: E402
from dreamengine.transforms import TILE_SIZE, Transforms  # noqa: E402

import native  # noqa: E402,F401  (puts the engine on sys.path)


def parse_weights(text: str) -> dict:
    """"a:1,b:0.5" -> {"a": 1.0, "b": 0.5}, the page's URL syntax; a bare name weighs 1."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        try:
            weights[name.strip()] = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise ValueError(f"bad weight {weight.strip()!r} for layer {name.strip()!r}: "
                             "give layer:number, e.g. block_8_expand_relu:0.5") from None
    return weights


def parse_channel(text: str) -> tuple:
    """"layer:index" -> (layer, index), the page's URL syntax."""
    layer, _, index = text.partition(":")
    try:
        return layer.strip(), int(index)
    except ValueError:
        raise ValueError(f"bad channel {text!r}: give layer:index, e.g. "
                         "block_8_expand_relu:7") from None


def _default_layers() -> str:
    """Each model's default layers, for --help."""
    return "; ".join(
        f"{model}: " + ",".join(f"{k}:{v:g}" for k, v in table["default"]["weights"].items())
        for model, table in presets.PRESETS_BY_MODEL.items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Options mirror the page's controls; defaults are the engine's, per model."""
    d = presets.DEFAULT
    parser = argparse.ArgumentParser(prog="python -m native.dream", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("input", type=Path, help="image file to dream on (PNG, JPEG, ...)")
    parser.add_argument("output", type=Path, help="where to write the dream (PNG)")
    parser.add_argument("--model", choices=sorted(presets.PRESETS_BY_MODEL),
                        default=presets.DEFAULT_MODEL,
                        help="which network dreams: its export in models/<model>/")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="manifest.json of another export of --model (default: "
                        "models/<model>/manifest.json)")
    parser.add_argument("--preset", choices=sorted(presets.PRESETS), default=None,
                        help="start from the model's named preset; other options override it")
    parser.add_argument("--layers", default=None,
                        help="layer:weight,... as in the page's URL (default: "
                        + _default_layers() + ")")
    parser.add_argument("--norm", choices=NORMS, default=None, help="mean or l2 of activations")
    parser.add_argument("--channel", default=None, help="layer:index, dream one channel")
    parser.add_argument("--octaves", type=int, default=None, help=f"default {d['octaves']}")
    parser.add_argument("--octave-scale", type=float, default=None,
                        help=f"default {d['octave_scale']}")
    parser.add_argument("--steps", type=int, default=None, help=f"default {d['steps']}")
    parser.add_argument("--step-size", type=float, default=None, help=f"default {d['step_size']}")
    parser.add_argument("--jitter", type=int, default=None, help=f"default {d['jitter']}")
    parser.add_argument("--tile", type=int, default=TILE_SIZE, help="tile size in pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed (repeatable runs)")
    parser.add_argument("--max-side", type=int, default=0,
                        help="scale the input down to this longer side first (0: keep)")
    from native.guiding import add_guide_arguments

    add_guide_arguments(parser)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> dict:
    """The model's preset (or default) settings with the command-line overrides applied."""
    settings = dict(presets.for_model(args.model)[args.preset or "default"])
    if args.layers:
        settings["weights"] = parse_weights(args.layers)
    for key in ("norm", "octaves", "octave_scale", "steps", "step_size", "jitter"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return settings


def main(argv: list[str] | None = None) -> int:
    """Read, dream, write; print progress per octave."""
    args = parse_args(argv)
    import json

    from PIL import Image, ImageOps

    try:
        photo = ImageOps.exif_transpose(Image.open(args.input)).convert("RGB")
    except OSError as error:
        print(f"error: cannot read {args.input}: {error}", file=sys.stderr)
        return 1
    if args.max_side and max(photo.size) > args.max_side:
        photo.thumbnail((args.max_side, args.max_side), Image.LANCZOS)
    import numpy as np

    # Everything the manifest alone can refuse is refused before TensorFlow loads (seconds).
    manifest_path = args.manifest or native.REPO / "models" / args.model / "manifest.json"
    try:
        manifest = json.loads(Path(manifest_path).read_text())
    except (OSError, ValueError) as error:
        print(f"error: cannot read {manifest_path}: {error}", file=sys.stderr)
        return 1
    if manifest["model"]["name"] != args.model:
        print(f"error: {manifest_path} is a {manifest['model']['name']} export, not "
              f"{args.model}", file=sys.stderr)
        return 1
    min_side = manifest["input"].get("min_side", 1)
    if min(photo.size) < min_side:
        print(f"error: {args.input} is {photo.size[0]}x{photo.size[1]}; {args.model} needs at "
              f"least {min_side} px on each side", file=sys.stderr)
        return 1
    try:
        settings = settings_from(args)
        channel = parse_channel(args.channel) if args.channel else None
        objective = Objective(settings["weights"], settings["norm"], channel)
        objective.check(manifest["outputs"])
        schedule = Schedule(settings["octaves"], settings["octave_scale"], settings["steps"],
                            settings["step_size"], min_side)
        transforms = Transforms(settings["jitter"], args.tile)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    from converter.errors import ExportError
    from converter.export import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up chatter would bury a one-line error
    from native import tf_backend

    try:
        model, manifest = tf_backend.load_model(manifest_path)
    except (OSError, ExportError) as error:
        print(f"error: cannot load model {args.model}: {error}", file=sys.stderr)
        return 1
    ops = tf_backend.TfBackend(model, manifest)
    try:  # --guide: a guided dream (dreamengine/guide.py), else the objective as it is
        from native.guiding import guided_objective

        objective = guided_objective(args, ops, objective, manifest["outputs"])
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    start = time.monotonic()

    def report(info: object) -> None:
        if info.step == info.steps - 1:
            print(f"octave {info.octave + 1}/{info.octaves}: loss {info.loss:.4f} "
                  f"({time.monotonic() - start:.1f} s)", flush=True)

    image = tf_backend.to_tensor(np.asarray(photo))
    result = tf_backend.finish(dream(ops, image, objective, schedule, transforms, args.seed,
                               on_step=report))
    Image.fromarray(tf_backend.to_pixels(result)).save(args.output)
    print(f"wrote {args.output} ({photo.size[0]}x{photo.size[1]}, {args.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
