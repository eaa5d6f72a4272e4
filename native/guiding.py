"""Command-line pieces shared by `native.dream` and `native.zoom`: reading images, the
guide options, and the guided objective built from them.

Kept apart from the two commands so they accept the same options and say the same
`error:` sentences.
"""

import argparse
from pathlib import Path

from dreamengine import presets
from dreamengine.guide import GuideObjective

GUIDE_MAX_SIDE = 512  # a guide larger than this is scaled down: its features are subsampled anyway


def load_rgb(path: Path, max_side: int = 0) -> object:
    """The image at `path` as an upright RGB PIL image, at most `max_side` px (0: any).

    Raises OSError with the reason when the file cannot be read as an image.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError) as error:
        raise OSError("cannot read " + str(path) + ": " + str(error)) from error
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.LANCZOS)
    if min(image.size) < 32:
        raise OSError(str(path) + " is too small (" + str(image.size[0]) + "x"
                      + str(image.size[1]) + "): the model needs at least 32 px a side")
    return image


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
                     outputs: list) -> object:
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
    objective.check(outputs)
    guide = load_rgb(args.guide, GUIDE_MAX_SIDE)
    objective.set_guide(ops, tf_backend.to_tensor(np.asarray(guide)))
    return objective
