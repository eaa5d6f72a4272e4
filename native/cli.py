"""Command-line pieces shared by `native.dream` and `native.zoom`: reading the model's
manifest and images, the guide options, and the guided objective built from them.

Kept apart from the two commands so they accept the same options and say the same
`error:` sentences (each raises OSError or ValueError with the sentence; the command
prints it after `error: `).
"""

import argparse
import json
from pathlib import Path

from dreamengine import presets
from dreamengine.guide import GuideObjective


def read_manifest(model: str, path: Path | None = None) -> tuple:
    """(manifest, its path): models/MODEL/manifest.json or `path`, checked to be `model`'s.

    Read before TensorFlow loads (seconds), so that what the manifest alone can refuse is
    refused at once."""
    from native import REPO

    path = Path(path) if path else REPO / "models" / model / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise OSError("cannot read " + str(path) + ": " + str(error)) from error
    if manifest["model"]["name"] != model:
        raise ValueError(str(path) + " is a " + manifest["model"]["name"] + " export, not "
                         + model)
    return manifest, path


def load_rgb(path: Path, max_side: int = 0, min_side: int = 1, model: str = "the model"
             ) -> object:
    """The image at `path` as an upright RGB PIL image, at most `max_side` px (0: any).

    Raises OSError with the reason when the file cannot be read as an image, or when it is
    smaller than `min_side` (the model's smallest input, manifest input.min_side) a side.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError) as error:
        raise OSError("cannot read " + str(path) + ": " + str(error)) from error
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.LANCZOS)
    if min(image.size) < min_side:
        raise OSError(str(path) + " is " + str(image.size[0]) + "x" + str(image.size[1])
                      + "; " + model + " needs at least " + str(min_side)
                      + " px on each side")
    return image


def command_parser(prog: str, description: str, input_help: str, output_help: str
                   ) -> argparse.ArgumentParser:
    """A command's parser with its two files: `python -m PROG INPUT OUTPUT [options]`."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help=input_help)
    parser.add_argument("output", type=Path, help=output_help)
    return parser


def add_dream_arguments(parser: argparse.ArgumentParser, layers_help: str, preset_help: str,
                        jitter: object, max_side: int) -> None:
    """The options both commands share, with the same names and meanings: --model, --preset,
    --layers, --norm, --jitter, --tile, --seed, --max-side and the guide's."""
    from dreamengine.objective import NORMS
    from dreamengine.transforms import TILE_SIZE

    parser.add_argument("--model", choices=sorted(presets.MODEL_NAMES),
                        default=presets.DEFAULT_MODEL,
                        help="which network dreams: its export in models/<model>/")
    parser.add_argument("--preset", choices=sorted(presets.PRESETS), default=None,
                        help=preset_help)
    parser.add_argument("--layers", default=None,
                        help="layer:weight,... as in the page's URL (default: " + layers_help
                        + ")")
    parser.add_argument("--norm", choices=NORMS, default=None, help="mean or l2 of activations")
    parser.add_argument("--jitter", type=int, default=jitter, help="default " + str(
        presets.DEFAULT["jitter"] if jitter is None else jitter))
    parser.add_argument("--tile", type=int, default=TILE_SIZE, help="tile size in pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed (repeatable runs)")
    parser.add_argument("--max-side", type=int, default=max_side,
                        help="scale the input down to this longer side first (0: keep; "
                        "default " + str(max_side) + ")")
    add_guide_arguments(parser)


def add_guide_arguments(parser: argparse.ArgumentParser) -> None:
    """--guide, --guide-layers, --guide-mix, with the engine's defaults."""
    g = presets.GUIDE
    parser.add_argument("--guide", type=Path, default=None,
                        help="an image whose features steer the dream (guided dream)")
    parser.add_argument("--guide-layers", default=None,
                        help="comma-separated layers matched to the guide (default: "
                        + ",".join(g["layers"]) + ")")
    parser.add_argument("--guide-mix", type=float, default=None,
                        help="1: the guide alone, 0: the plain objective alone (default "
                        + str(g["mix"]) + ")")


def guided_objective(args: argparse.Namespace, ops: object, plain: object,
                     manifest: dict) -> object:
    """`plain` itself without --guide; else a GuideObjective holding the guide's features.

    Raises ValueError (bad layer or mix) or OSError (unreadable guide) with the reason.
    """
    if args.guide is None:
        if args.guide_layers is not None or args.guide_mix is not None:
            raise ValueError("--guide-layers and --guide-mix need --guide IMAGE")
        return plain
    import numpy as np

    from native import tf_backend

    layers = presets.GUIDE["layers"]
    if args.guide_layers:
        layers = [name.strip() for name in args.guide_layers.split(",") if name.strip()]
    mix = presets.GUIDE["mix"] if args.guide_mix is None else args.guide_mix
    objective = GuideObjective(layers, mix, plain, presets.GUIDE["max_vectors"])
    objective.check(manifest["outputs"])
    guide = load_rgb(args.guide, presets.GUIDE["max_side"], manifest["input"].get("min_side", 1),
                     manifest["model"]["name"])
    objective.set_guide(ops, tf_backend.to_tensor(np.asarray(guide)))
    return objective
