"""Dream a video into a video with native TensorFlow, the dream carried along the motion.

    python -m native.video clip.mp4 dream.mp4 [--max-side 720] [--steps 5] [--blend 0.9]
                           [--no-flow] [--frames 0:48] [--model inception_v3]
                           [--preset deep | --layers block_8_expand_relu:1] [...]

The same engine and defaults as the page (`dreamengine/video.py`, `presets.VIDEO`): the
first frame is dreamt whole, every later one starts from the previous dream warped along the
optical flow and blended with the new frame, then dreams a few steps. Frames are read,
dreamt and written one at a time (memory stays flat), with their own times (frame rate and
duration kept) and the audio track copied. The output's suffix picks the format: .mp4
(H.264), .webm (VP9), .gif.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dreamengine import presets
from dreamengine.plan import parse_weights, plan
from dreamengine.video import Coherence, VideoDreamer
from native.cli import add_dream_arguments, command_parser, guided_objective, read_manifest
from native.media import FORMATS, VideoSource, Writer, available_codec


def frame_range(text: str) -> tuple:
    """"START:END" -> (start, end or None), frame indices as in a Python slice."""
    bits = text.split(":")
    try:
        if len(bits) != 2:
            raise ValueError
        start = int(bits[0]) if bits[0].strip() else 0
        end = int(bits[1]) if bits[1].strip() else None
    except ValueError:
        raise ValueError(f"bad frame range {text!r}: give START:END, e.g. 0:48 or 24:") from None
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"bad frame range {text!r}: START must be 0 or more and END above it")
    return start, end


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Options mirror the page's video settings; defaults are presets.VIDEO."""
    v = presets.VIDEO
    parser = command_parser("python -m native.video", __doc__,
                            "video to dream (MP4, MOV, WebM, ...)",
                            "video to write: " + ", ".join(FORMATS))
    add_dream_arguments(parser, "the model's default layers",
                        "take the layers and first-frame schedule of the model's named preset",
                        jitter=None, max_side=v["max_side"])
    parser.add_argument("--steps", type=int, default=v["steps"],
                        help=f"gradient steps on each frame after the first (default {v['steps']})")
    parser.add_argument("--step-size", type=float, default=v["step_size"],
                        help=f"default {v['step_size']}")
    parser.add_argument("--blend", type=float, default=v["blend"],
                        help="how much of the previous dream a still region keeps, 0-1 "
                        f"(default {v['blend']})")
    parser.add_argument("--blend-moving", type=float, default=v["blend_moving"],
                        help=f"the same where the picture moves (default {v['blend_moving']})")
    parser.add_argument("--no-flow", action="store_true",
                        help="blend with the previous dream where it was, not along the motion")
    parser.add_argument("--frames", default="0:",
                        help="the frames to dream, START:END as a Python slice (default all)")
    return parser.parse_args(argv)


def dream_settings(args: argparse.Namespace) -> dict:
    """The first frame's dream settings for plan(): the model's --preset or default, its
    layers replaced by --layers, the shared options applied."""
    table = presets.for_model(args.model)
    base = table[args.preset or "default"]
    weights = parse_weights(args.layers) if args.layers else base["weights"]
    return dict(base, weights=weights, norm=args.norm or base["norm"],
                jitter=base["jitter"] if args.jitter is None else args.jitter,
                tile_size=args.tile, seed=args.seed)


def main(argv: list[str] | None = None) -> int:
    """Read, dream and write frame by frame; print progress every few frames."""
    args = parse_args(argv)
    from converter.export import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up chatter would bury a one-line error
    from native import tf_backend

    suffix = args.output.suffix.lower()
    try:
        start, end = frame_range(args.frames)
        if suffix != ".gif":
            available_codec(suffix)
        coherence = Coherence(not args.no_flow, args.blend, args.blend_moving)
        plain, schedule, transforms, seed = plan(dream_settings(args))
        manifest, manifest_path = read_manifest(args.model)
        plain.check(manifest["outputs"])
        source = VideoSource(args.input, args.max_side)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    model, manifest = tf_backend.load_model(manifest_path)
    ops = tf_backend.TfBackend(model, manifest)
    schedule.min_side = manifest["input"].get("min_side", 1)
    try:
        objective = guided_objective(args, ops, plain, manifest)
        dreamer = VideoDreamer(ops, objective, schedule, args.steps, args.step_size,
                               transforms, coherence, seed)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        source.close()
        return 1
    writer = None
    began = time.monotonic()
    first_time = None
    try:
        for index, seconds, pixels in source.frames():
            if index < start:
                continue
            if end is not None and index >= end:
                break
            if writer is None:
                if min(pixels.shape[:2]) < schedule.min_side:
                    raise ValueError(f"{args.input}'s frames are {pixels.shape[1]}x"
                                     f"{pixels.shape[0]}; {args.model} needs at least "
                                     f"{schedule.min_side} px a side")
                first_time = seconds
                last = None if end is None else first_time + (end - start) / source.fps
                writer = Writer(args.output, source.fps, pixels.shape[1], pixels.shape[0],
                                source, first_time, last, source.stream.time_base)
            dreamt = tf_backend.finish(dreamer.dream(tf_backend.to_tensor(pixels)))
            writer.add(tf_backend.to_pixels(dreamt), seconds - first_time)
            if writer.frames % 10 == 0:
                print(f"frame {writer.frames} ({(time.monotonic() - began) / writer.frames:.2f}"
                      " s a frame)", flush=True)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        dreamer.close()
        if writer is not None:
            writer.close()
        source.close()
    if writer is None or writer.frames == 0:
        print(f"error: {args.input} has no frames to dream"
              + (f" in {args.frames}" if args.frames != "0:" else ""), file=sys.stderr)
        return 1
    if source.truncated:
        print(f"note: {args.input} was cut short; dreamt the {writer.frames} frames that decode")
    width, height = source.size
    audio = f", audio {writer.audio_codec}" if writer.audio_codec else ", no audio"
    print(f"wrote {args.output} ({writer.frames} frames, {width}x{height}, "
          f"{source.fps:g} fps{audio}, {args.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
