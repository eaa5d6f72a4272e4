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
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dreamengine import presets  # noqa: E402
from dreamengine.objective import NORMS, Objective  # noqa: E402
from dreamengine.transforms import TILE_SIZE, Transforms  # noqa: E402
from dreamengine.zoom import check_settings, dream_zoom  # noqa: E402

import native  # noqa: E402
from native.dream import parse_weights  # noqa: E402
from native.guiding import add_guide_arguments, guided_objective, load_rgb  # noqa: E402

# Video codecs per suffix, best first (PyAV's FFmpeg names); .gif needs none.
CODECS = {".webm": ["libvpx-vp9", "libvpx"], ".mp4": ["libx264", "h264", "libopenh264"]}
FORMATS = sorted(CODECS) + [".gif"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Options mirror `native.dream`'s where they mean the same; defaults are presets.ZOOM."""
    z = presets.ZOOM
    parser = argparse.ArgumentParser(prog="python -m native.zoom", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="image file to start from (PNG, JPEG, ...)")
    parser.add_argument("output", type=Path, help="video to write: .webm, .mp4 or .gif")
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
    parser.add_argument("--model", choices=sorted(presets.PRESETS_BY_MODEL),
                        default=presets.DEFAULT_MODEL,
                        help="which network dreams: its export in models/<model>/")
    parser.add_argument("--preset", choices=sorted(presets.PRESETS), default=None,
                        help="take the layers (and norm) of the model's named preset")
    parser.add_argument("--layers", default=None,
                        help="layer:weight,... as in the page's URL (default: the model's "
                        "default layers; mobilenet_v2: " + ",".join(
                            f"{k}:{v:g}" for k, v in z["weights"].items()) + ")")
    parser.add_argument("--norm", choices=NORMS, default=None, help="mean or l2 of activations")
    parser.add_argument("--jitter", type=int, default=z["jitter"],
                        help=f"default {z['jitter']}")
    parser.add_argument("--tile", type=int, default=TILE_SIZE, help="tile size in pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed (repeatable runs)")
    parser.add_argument("--fps", type=float, default=z["fps"],
                        help=f"frames per second of the video (default {z['fps']})")
    parser.add_argument("--max-side", type=int, default=512,
                        help="scale the input down to this longer side first (0: keep; "
                        "default 512)")
    add_guide_arguments(parser)
    return parser.parse_args(argv)


def plain_objective(args: argparse.Namespace) -> Objective:
    """The layers and norm: --layers, else the model's --preset's, else its default's
    (for MobileNetV2 presets.ZOOM's)."""
    table = presets.for_model(args.model)
    if args.preset:
        base = table[args.preset]
    else:
        base = presets.ZOOM if args.model == presets.DEFAULT_MODEL else table["default"]
    weights = parse_weights(args.layers) if args.layers else base["weights"]
    return Objective(weights, args.norm or base["norm"])


class Writer:
    """Frames in, a video or GIF out, one frame at a time (GIF frames are kept until close,
    as Pillow writes a GIF in one go; they are small palette images)."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        self.path = path
        self.fps = fps
        self.gif = []
        self.container = None
        if path.suffix.lower() == ".gif":
            return
        import av

        codec = available_codec(path.suffix.lower())
        self.container = av.open(str(path), mode="w")
        from fractions import Fraction

        self.stream = self.container.add_stream(
            codec, rate=Fraction(fps).limit_denominator(1000))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        if codec.startswith("libvpx"):  # constant quality: small files for dreamy detail
            self.stream.options = {"crf": "32", "b:v": "0", "deadline": "good", "cpu-used": "4"}
        elif codec == "libx264":
            self.stream.options = {"crf": "23", "preset": "medium"}

    def add(self, pixels: object) -> None:
        """Append one uint8 RGB (h, w, 3) frame."""
        if self.container is None:
            from PIL import Image

            self.gif.append(Image.fromarray(pixels).quantize(
                colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
            return
        import av

        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        """Finish the file (flush the encoder / write the GIF)."""
        if self.container is None:
            if self.gif:
                self.gif[0].save(self.path, save_all=True, append_images=self.gif[1:],
                                 duration=round(1000 / self.fps), loop=0, optimize=True)
            return
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def available_codec(suffix: str) -> str:
    """The first codec for `suffix` that this PyAV build can encode; ValueError if none."""
    if suffix not in CODECS:
        raise ValueError("unsupported output format " + repr(suffix) + "; use one of "
                         + ", ".join(FORMATS))
    import av

    for name in CODECS[suffix]:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 (PyAV raises several kinds for a missing codec)
            continue
        return name
    raise ValueError("no encoder for " + suffix + " in this PyAV build (tried "
                     + ", ".join(CODECS[suffix]) + "); write .webm or .gif instead")


def main(argv: list[str] | None = None) -> int:
    """Read, zoom and dream frame by frame, write; print progress every few frames."""
    args = parse_args(argv)
    import numpy as np

    from converter.export import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up chatter would bury a one-line error
    from native import tf_backend

    suffix = args.output.suffix.lower()
    try:
        check_settings(args.frames, args.zoom, args.rotation, args.steps, args.step_size)
        if not args.fps > 0:
            raise ValueError(f"fps must be positive (got {args.fps:g})")
        if suffix != ".gif":
            available_codec(suffix)
        plain = plain_objective(args)
        transforms = Transforms(args.jitter, args.tile)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        photo = load_rgb(args.input, args.max_side)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    pixels = np.asarray(photo)
    if suffix != ".gif":  # 4:2:0 video needs even sides
        pixels = pixels[:pixels.shape[0] // 2 * 2, :pixels.shape[1] // 2 * 2]
    model, manifest = tf_backend.load_model(native.REPO / "models" / args.model
                                            / "manifest.json")
    ops = tf_backend.TfBackend(model, manifest)
    min_side = manifest["input"].get("min_side", 1)
    if min(pixels.shape[:2]) < min_side:
        print(f"error: {args.input} is {pixels.shape[1]}x{pixels.shape[0]}; {args.model} needs "
              f"at least {min_side} px on each side", file=sys.stderr)
        return 1
    try:
        plain.check(manifest["outputs"])
        objective = guided_objective(args, ops, plain, manifest["outputs"])
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
                                     transforms, args.seed, on_frame=on_frame))
    finally:
        writer.close()
    print(f"wrote {args.output} ({args.frames} frames, {width}x{height}, {args.fps:g} fps, "
          f"{args.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
