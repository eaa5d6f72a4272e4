"""Export a real ImageNet MobileNetV2 to TF.js for dreaming: `python converter/export.py`.

Stages: read weights -> rebuild headless multi-output model -> prove the weights are ImageNet
(top-5 on real photos) -> SavedModel -> TF.js graph model -> check TF.js against Keras ->
publish atomically into models/mobilenet_v2/ with manifest.json. With no arguments and no
network it reproduces the committed artifacts byte for byte.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `converter` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from converter import mobilenet, sources  # noqa: E402
from converter.errors import ExportError  # noqa: E402
from converter.tfjs_export import QUANTIZATIONS  # noqa: E402

CONVERTER_VERSION = "1.0.0"
MANIFEST_FORMAT = "dreamframe-model-manifest"
MANIFEST_VERSION = 1
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "models" / "mobilenet_v2"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; every one has its default in --help."""
    parser = argparse.ArgumentParser(
        prog="python converter/export.py",
        description="Rebuild ImageNet MobileNetV2 as a multi-output, any-size model and export "
        "it to TensorFlow.js (graph model) with a manifest the page reads.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--source", choices=("keras", "hub"), default="keras",
                        help="where the ImageNet weights come from: the Keras Applications "
                        "HDF5 file (offline) or a TF Hub handle / SavedModel directory")
    parser.add_argument("--weights", type=Path, default=None,
                        help="Keras HDF5 weights file (--source keras); default: the file "
                        f"that {sources.WEIGHTS_PACKAGE} ships")
    parser.add_argument("--sha256", default=sources.WEIGHTS_SHA256,
                        help="expected sha256 of the weights file; a mismatch is refused")
    parser.add_argument("--handle", default=sources.DEFAULT_HANDLE,
                        help="TF Hub handle (URL) or local SavedModel directory with TF-Slim "
                        "MobilenetV2 variables (--source hub)")
    parser.add_argument("--layers", default=",".join(mobilenet.DEFAULT_LAYERS),
                        help="comma-separated layers to output, shallow to deep "
                        "(see --list-layers)")
    parser.add_argument("--list-layers", action="store_true",
                        help="print every usable layer with stride and channels, then exit")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="float16",
                        help="weight storage: float16 halves the download at ~1e-3 error, "
                        "uint8 quarters it at a visible cost")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder, replaced atomically")
    return parser.parse_args(argv)


class Progress:
    """Numbered progress lines with each stage's time, and the total at the end."""

    def __init__(self, stages: int) -> None:
        self.stages, self.done, self.start = stages, 0, time.monotonic()
        self.stage_start = self.start

    def begin(self, what: str) -> None:
        self.done += 1
        self.stage_start = time.monotonic()
        print(f"[{self.done}/{self.stages}] {what} ...", flush=True)

    def note(self, text: str) -> None:
        print(f"      {text}", flush=True)

    def end(self) -> None:
        print(f"      done in {time.monotonic() - self.stage_start:.1f} s", flush=True)

    def total(self) -> None:
        print(f"total {time.monotonic() - self.start:.1f} s", flush=True)


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter, so errors stay one clear line.

    TF prints CUDA-plugin registration noise straight to file descriptor 2 while importing,
    before any log level applies, so stderr is pointed at /dev/null for the import only.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def list_layers() -> None:
    """Print the dreamable layers, marking the defaults."""
    print(f"{'layer':28} {'stride':>6} {'channels':>8}  label")
    for info in mobilenet.usable_layers():
        mark = "  (default)" if info.name in mobilenet.DEFAULT_LAYERS else ""
        print(f"{info.name:28} {info.stride:>6} {info.channels:>8}  {info.label}{mark}")


def load_source(args: argparse.Namespace) -> tuple[dict, dict]:
    """Weights and source description from the chosen source."""
    if args.source == "keras":
        path = args.weights or sources.default_weights_path()
        return sources.keras_file_weights(path, args.sha256)
    return sources.hub_weights(args.handle)


def build_manifest(
    args: argparse.Namespace, names: list[str], infos: list[mobilenet.LayerInfo],
    nodes: list[str], source: dict, error: float, tolerance: float,
) -> dict:
    """What the page needs to know about the model, in a stable (byte-identical) form."""
    by_name = {info.name: info for info in infos}
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "model": {"file": "model.json", "format": "tfjs-graph-model",
                  "tfjs_converter": "4.22.0", "quantization": args.quantize},
        "input": {"node": "image", "shape": [1, None, None, 3], "layout": "NHWC", "color": "RGB",
                  "range": list(mobilenet.INPUT_RANGE),
                  "preprocessing": "pixel / 127.5 - 1 (uint8 RGB to [-1, 1])"},
        "outputs": [
            {"index": i, "layer": name, "node": nodes[i], "stride": by_name[name].stride,
             "channels": by_name[name].channels, "label": by_name[name].label}
            for i, name in enumerate(names)
        ],
        "source": source,
        "converter": {"name": "dreamframe converter/export.py", "version": CONVERTER_VERSION},
        "fidelity": {"check": "||tfjs - keras|| / ||keras|| per output, tfjs cpu backend, "
                              "skimage chelsea and coffee",
                     "max_relative_error": float(f"{error:.2e}"), "tolerance": tolerance},
    }


def export(args: argparse.Namespace) -> None:
    """Run every stage; raise ExportError for anything the user can fix."""
    from converter import tfjs_export

    progress = Progress(6)
    names = [n.strip() for n in args.layers.split(",") if n.strip()]
    tfjs_export.check_writable(args.out)

    progress.begin("checking layers")
    quiet_tensorflow()
    infos = mobilenet.usable_layers()
    try:
        mobilenet.check_layer_names(names, infos)
    except ValueError as error:
        raise ExportError(str(error)) from None
    progress.note(", ".join(names))
    progress.end()

    progress.begin(f"reading weights ({args.source})")
    weights, source = load_source(args)
    progress.note(f"{source['name']} sha256 {source['sha256'][:16]}...")
    progress.end()

    progress.begin("rebuilding MobileNetV2 (any input size) and proving ImageNet weights")
    from converter import fidelity

    backbone = mobilenet.backbone(weights)
    model = mobilenet.multi_output(backbone, names)
    classifier = mobilenet.classifier(weights)
    if classifier is None:
        progress.note("source has no classification head: top-5 proof skipped")
    else:
        labels = fidelity.imagenet_labels()
        for photo, pixels in fidelity.photos().items():
            top = fidelity.top5(classifier, pixels, labels)
            progress.note(f"{photo}: " + "; ".join(f"{label} {p:.2f}" for label, p in top))
    progress.end()

    with tfjs_export.staging(args.out) as scratch:
        progress.begin("exporting SavedModel and converting to TF.js")
        tfjs_export.save_saved_model(model, names, scratch / "saved_model")
        out = scratch / "out"
        tfjs_export.convert(scratch / "saved_model", out, args.quantize)
        tfjs_export.canonicalise(out / "model.json")
        nodes = tfjs_export.output_nodes(out / "model.json", names)
        size = sum(f.stat().st_size for f in out.iterdir())
        progress.note(f"{size / 1e6:.2f} MB ({args.quantize})")
        progress.end()

        progress.begin("checking TF.js outputs against Keras on real photos")
        error = fidelity.compare(model, out, nodes)
        tolerance = fidelity.TOLERANCE[args.quantize]
        progress.note(f"largest relative error {error:.2e} (tolerance {tolerance:g})")
        if not error <= tolerance:
            raise ExportError(
                f"TF.js output differs from Keras: relative error {error:.2e} > {tolerance:g}"
            )
        progress.end()

        progress.begin(f"writing {args.out}")
        manifest = build_manifest(args, names, infos, nodes, source, error, tolerance)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    progress.end()
    progress.total()


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear line and exit status 1 for any user-fixable problem."""
    args = parse_args(argv)
    try:
        if args.list_layers:
            quiet_tensorflow()
            list_layers()
        else:
            export(args)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; previous models left as they were", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
