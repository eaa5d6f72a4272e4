"""Dream zoom into a video or GIF with native TensorFlow (the original notebook's endless zoom).

    python -m native.zoom photo.jpg zoom.webm [--frames 120] [--zoom 1.05] [--rotation 0.5]
                          [--steps 5] [--model inception_v3]
                          [--preset deep | --layers block_8_expand_relu:1] [...]

The same engine and defaults as the page (`dreamengine/zoom.py`, `presets.ZOOM`; the
layers are the model's, as the page's zoom dreams the layers chosen for its model). Each frame
zooms the last one about its centre, dreams a few steps on it at full size and is written
at once (memory stays flat over any number of frames). The output's suffix picks the
format: .webm (VP9), .mp4 (H.264), .gif (Pillow).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dreamengine import presets
from dreamengine.plan import parse_weights, plan
from dreamengine.zoom import check_settings, dream_zoom
from native.cli import (
    add_dream_arguments,
    command_parser,
    guided_objective,
    load_rgb,
    read_manifest,
)
from native.media import Writer, available_codec


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Options mirror `native.dream`'s where they mean the same; defaults are presets.ZOOM."""
    z = presets.ZOOM
    parser = command_parser("python -m native.zoom", __doc__,
                            "image file to start from (PNG, JPEG, ...)",
                            "video to write: .webm, .mp4 or .gif")
    parser.add_argument("--frames", type=int, default=z["frames"],
                        help=f"number of frames (default {z['frames']})")
    parser.add_argument("--zoom", type=float, default=z["zoom"],
                        help=f"scale per frame about the centre (default {z['zoom']})")
    parser.add_argument("--rotation", type=float, default=z["rotation"],
                        help="degrees per frame, counter-clockwise (default "
                        f"{z['rotation']:g})")
    parser.add_argument("--steps", type=int, default=z["steps"],
                        help=f"gradient steps per frame (default {z['steps']})")
    parser.add_argument("--step-size", type=float, default=z["step_size"],
                        help=f"default {z['step_size']}")
    parser.add_argument("--fps", type=float, default=z["fps"],
                        help=f"frames per second of the video (default {z['fps']})")
    add_dream_arguments(parser, "the model's default layers; mobilenet_v2: " + ",".join(
        f"{k}:{v:g}" for k, v in z["weights"].items()),
        "take the layers (and norm) of the model's named preset", jitter=z["jitter"],
        max_side=512)
    return parser.parse_args(argv)


def zoom_settings(args: argparse.Namespace) -> dict:
    """Dream settings for plan(): the layers and norm from --layers, else the model's
    --preset's, else its default's (for MobileNetV2 presets.ZOOM's); the frames' steps are
    the zoom's own (--steps, --step-size), not a schedule's."""
    table = presets.for_model(args.model)
    if args.preset:
        base = table[args.preset]
    else:
        base = presets.ZOOM if args.model == presets.DEFAULT_MODEL else table["default"]
    weights = parse_weights(args.layers) if args.layers else base["weights"]
    return dict(table["default"], weights=weights, norm=args.norm or base["norm"],
                jitter=args.jitter, tile_size=args.tile, seed=args.seed)


def main(argv: list[str] | None = None) -> int:
    """Read, zoom and dream frame by frame, write; print progress every few frames."""
    args = parse_args(argv)
    import numpy as np

    suffix = args.output.suffix.lower()
    try:  # all that the settings and files alone can refuse, before TensorFlow loads (seconds)
        check_settings(args.frames, args.zoom, args.rotation, args.steps, args.step_size)
        if not args.fps > 0:
            raise ValueError(f"fps must be positive (got {args.fps:g})")
        if suffix != ".gif":
            available_codec(suffix)
        plain, _, transforms, seed = plan(zoom_settings(args))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        manifest, manifest_path = read_manifest(args.model)
        min_side = manifest["input"].get("min_side", 1)
        photo = load_rgb(args.input, args.max_side, min_side, args.model)
        plain.check(manifest["outputs"])
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    pixels = np.asarray(photo)
    if suffix != ".gif":  # 4:2:0 video needs even sides
        pixels = pixels[:pixels.shape[0] // 2 * 2, :pixels.shape[1] // 2 * 2]
    from converter.export import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up chatter would bury a one-line error
    from native import tf_backend

    model, manifest = tf_backend.load_model(manifest_path)
    ops = tf_backend.TfBackend(model, manifest)
    try:
        objective = guided_objective(args, ops, plain, manifest)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    height, width = pixels.shape[:2]
    try:
        writer = Writer(args.output, args.fps, width, height)
    except (ValueError, OSError) as error:
        print(f"error: cannot write {args.output}: {error}", file=sys.stderr)
        return 1
    start = time.monotonic()

    def on_frame(frame: object) -> None:
        writer.add(tf_backend.to_pixels(frame.image))
        if (frame.index + 1) % 10 == 0 or frame.index + 1 == frame.frames:
            loss = "" if frame.loss is None else f", loss {frame.loss:.4f}"
            print(f"frame {frame.index + 1}/{frame.frames}{loss} "
                  f"({time.monotonic() - start:.1f} s)", flush=True)

    try:
        tf_backend.finish(dream_zoom(ops, tf_backend.to_tensor(pixels), objective, args.frames,
                                     args.zoom, args.rotation, args.steps, args.step_size,
                                     transforms, seed, on_frame=on_frame))
    finally:
        writer.close()
    print(f"wrote {args.output} ({args.frames} frames, {width}x{height}, {args.fps:g} fps, "
          f"{args.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
