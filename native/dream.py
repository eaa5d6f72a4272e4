"""Dream an image file into an image file with native TensorFlow.

    python -m native.dream photo.jpg dream.png [--model inception_v3] [--preset deep]
                                               [--layers block_8_expand_relu:1,...] [...]

The same algorithm and defaults as the page (`dreamengine/`), without the
browser's memory limits: for batches, very large images, or the reference pictures in docs/.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dreamengine import presets
from dreamengine.plan import parse_weights, plan
from dreamengine.render import dream
from native.cli import add_dream_arguments, command_parser


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
    parser = command_parser("python -m native.dream", __doc__,
                            "image file to dream on (PNG, JPEG, ...)",
                            "where to write the dream (PNG)")
    add_dream_arguments(parser, _default_layers(),
                        "start from the model's named preset; other options override it",
                        jitter=None, max_side=0)
    parser.add_argument("--manifest", type=Path, default=None,
                        help="manifest.json of another export of --model (default: "
                        "models/<model>/manifest.json)")
    parser.add_argument("--channel", default=None, help="layer:index, dream one channel")
    parser.add_argument("--octaves", type=int, default=None, help=f"default {d['octaves']}")
    parser.add_argument("--octave-scale", type=float, default=None,
                        help=f"default {d['octave_scale']}")
    parser.add_argument("--steps", type=int, default=None, help=f"default {d['steps']}")
    parser.add_argument("--step-size", type=float, default=None, help=f"default {d['step_size']}")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> dict:
    """The model's preset (or default) settings with the command-line overrides applied."""
    settings = dict(presets.for_model(args.model)[args.preset or "default"])
    if args.layers:
        settings["weights"] = parse_weights(args.layers)
    for key in ("norm", "octaves", "octave_scale", "steps", "step_size", "jitter"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    settings["tile_size"] = args.tile
    settings["seed"] = args.seed
    if args.channel:
        settings["channel"] = parse_channel(args.channel)
    return settings


def main(argv: list[str] | None = None) -> int:
    """Read, dream, write; print progress per octave."""
    args = parse_args(argv)
    import numpy as np
    from PIL import Image

    from native.cli import load_rgb, read_manifest

    try:  # all that the files alone can refuse, before TensorFlow loads (seconds)
        manifest, manifest_path = read_manifest(args.model, args.manifest)
        min_side = manifest["input"].get("min_side", 1)
        photo = load_rgb(args.input, args.max_side, min_side, args.model)
        settings = settings_from(args)
        objective, schedule, transforms, seed = plan(settings, min_side=min_side)
        objective.check(manifest["outputs"])
    except (OSError, ValueError) as error:
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
        from native.cli import guided_objective

        objective = guided_objective(args, ops, objective, manifest)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    start = time.monotonic()

    def report(info: object) -> None:
        if info.step == info.steps - 1:
            print(f"octave {info.octave + 1}/{info.octaves}: loss {info.loss:.4f} "
                  f"({time.monotonic() - start:.1f} s)", flush=True)

    image = tf_backend.to_tensor(np.asarray(photo))
    result = tf_backend.finish(dream(ops, image, objective, schedule, transforms, seed,
                               on_step=report))
    Image.fromarray(tf_backend.to_pixels(result)).save(args.output)
    print(f"wrote {args.output} ({photo.size[0]}x{photo.size[1]}, {args.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
