"""Export a real ImageNet network to TF.js for dreaming: `python converter/export.py`.

Stages: read weights -> fold batch norm and round to the storage format in numpy -> prove
the weights are ImageNet (top-5 on real photos) -> SavedModel -> TF.js graph model, whose
stored weights must equal numpy's bit for bit -> check TF.js against Keras -> publish
atomically into models/<model>/ with manifest.json. With no arguments and no network it
reproduces the committed artifacts byte for byte, on any x86-64 CPU (issue 11): TensorFlow
never computes a weight, it only carries the ones numpy computed.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType

from converter import registry, sources
from converter.errors import ExportError
from converter.folding import QUANTIZATIONS
from converter.layers import LayerInfo, check_layer_names
from scripts import REPO

CONVERTER_VERSION = "2.1.0"
MANIFEST_FORMAT = "dreamframe-model-manifest"
MANIFEST_VERSION = 1  # fields were only added (2.0.0, 2.1.0): the page reads 1 as before
MODELS_DIR = REPO / "models"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; every one has its default in --help."""
    parser = argparse.ArgumentParser(
        prog="python converter/export.py",
        description="Rebuild an ImageNet network (batch norm folded in numpy) as a "
        "multi-output, any-size model and export it to TensorFlow.js (graph model) with a "
        "manifest the page reads.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", choices=tuple(registry.MODELS),
                        default=registry.DEFAULT_MODEL, help="which network to export")
    parser.add_argument("--source", choices=("keras", "hub"), default=None,
                        help="mobilenet_v2 only: where its ImageNet weights come from, the Keras "
                        "Applications HDF5 file (offline; what the default means) or a TF Hub "
                        "handle / SavedModel directory. inception_v3 reads nsfwjs's files")
    parser.add_argument("--weights", type=Path, default=None,
                        help="mobilenet_v2: Keras HDF5 weights file (--source keras), default the "
                        f"file that {sources.WEIGHTS_PACKAGE} ships; inception_v3: nsfwjs's "
                        "inception_v3 model folder, default node_modules/nsfwjs/dist/models/"
                        "inception_v3 (npm ci)")
    parser.add_argument("--sha256", default=sources.WEIGHTS_SHA256,
                        help="expected sha256 of the mobilenet_v2 weights file; a mismatch is "
                        "refused (nsfwjs's files are checked against sums in the code)")
    parser.add_argument("--handle", default=sources.DEFAULT_HANDLE,
                        help="TF Hub handle (URL) or local SavedModel directory with TF-Slim "
                        "MobilenetV2 variables (--source hub)")
    parser.add_argument("--layers", default=None,
                        help="comma-separated layers to output, shallow to deep "
                        "(see --list-layers); default: the model's default layers")
    parser.add_argument("--list-layers", action="store_true",
                        help="print every usable layer with stride and channels, then exit")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="float16",
                        help="weight storage: float16 halves the download at ~1e-3 error, "
                        "uint8 quarters it at a visible cost")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder, replaced atomically; default: models/<model>")
    args = parser.parse_args(argv)
    args.out = args.out or MODELS_DIR / args.model
    return args


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


# TensorFlow settings the converter decides itself, whatever the caller's environment says.
# oneDNN: TensorFlow turns it on by itself on CPUs with AVX-512 VNNI/BF16 (AMD Zen 4, recent
# Xeons), and its graph passes then write private `_input_shapes` attributes into the graph
# (issue 17). No weight depends on it (numpy computes them all), but the graph should be the
# same graph on every machine; `tfjs_export.canonicalise` also drops every private attribute.
TENSORFLOW_SETTINGS = {"TF_ENABLE_ONEDNN_OPTS": "0"}


def quiet_tensorflow(settings: dict[str, str] | None = None) -> None:
    """Import TensorFlow with `settings` forced and without its start-up chatter.

    TF reads settings such as TENSORFLOW_SETTINGS once, at import, so they are forced here,
    before it (the native command line passes none: it takes TensorFlow's fastest kernels).
    TF prints CUDA-plugin registration noise straight to file descriptor 2 while importing,
    before any log level applies, so stderr is pointed at /dev/null for the import only.
    """
    settings = settings or {}
    if "tensorflow" in sys.modules and any(os.environ.get(k) != v for k, v in settings.items()):
        raise ExportError("TensorFlow was imported before the converter could set it up")
    os.environ.update(settings)
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


def list_layers(module: ModuleType) -> None:
    """Print the dreamable layers, marking the defaults."""
    print(f"{'layer':28} {'stride':>6} {'channels':>8}  label")
    for info in module.usable_layers():
        mark = "  (default)" if info.name in module.DEFAULT_LAYERS else ""
        print(f"{info.name:28} {info.stride:>6} {info.channels:>8}  {info.label}{mark}")


def build_manifest(
    args: argparse.Namespace, module: ModuleType, names: list[str],
    infos: list[LayerInfo], nodes: list[str], source: dict, weights_sha256: str,
    quantization_error: float, min_side: int, size_bytes: int,
) -> dict:
    """What the page needs to know about the model, in a stable (byte-identical) form.

    Only figures that are the same on every CPU go in: the quantisation error is computed in
    float64 and kept to three digits; the TF.js-against-Keras error (~1e-6, float32 summation
    order, so CPU-dependent in its digits) is printed, and the manifest records the
    tolerance it passed. `model.size_bytes` (what the page downloads: model.json and the
    weight shards) and `input.min_side` (`geometry.smallest_side`) let the page describe and use a
    model without knowing which one it is.
    """
    from converter import fidelity

    by_name = {info.name: info for info in infos}
    # Values of the largest activation per input pixel, up to the deepest output: with the
    # backend's largest tensor it sets the largest tile the page may use (pyscript_app/limits.py).
    deepest = max(i for i, info in enumerate(infos) if info.name in names)
    per_pixel = max(info.channels / info.stride ** 2 for info in infos[:deepest + 1])
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "model": {"name": args.model, "file": "model.json", "format": "tfjs-graph-model",
                  "tfjs_converter": "4.22.0", "quantization": args.quantize,
                  "weights_sha256": weights_sha256, "size_bytes": size_bytes},
        "input": {"node": "image", "shape": [1, None, None, 3], "layout": "NHWC", "color": "RGB",
                  "range": list(module.INPUT_RANGE), "preprocessing": module.PREPROCESSING,
                  "largest_activation_per_pixel": per_pixel, "min_side": min_side},
        "outputs": [
            {"index": i, "layer": name, "node": nodes[i], "stride": by_name[name].stride,
             "channels": by_name[name].channels, "label": by_name[name].label}
            for i, name in enumerate(names)
        ],
        "source": source,
        "converter": {"name": "dreamframe converter/export.py", "version": CONVERTER_VERSION},
        "fidelity": {
            "measure": "largest ||a - b|| / ||b|| over outputs and photos (skimage chelsea "
                       "and coffee, at their own sizes)",
            "stored_weights": "bit-identical to the numpy fold and rounding",
            "tfjs_vs_keras": {
                "what": "tfjs wasm backend against Keras with the same stored weights, float32",
                "tolerance": fidelity.TFJS_TOLERANCE},
            "quantization": {
                "what": f"{args.quantize} stored weights against the float32 fold, in float64",
                "relative_error": fidelity.significant(quantization_error),
                "tolerance": fidelity.QUANTIZATION_TOLERANCE[args.quantize]},
        },
    }


def export(args: argparse.Namespace) -> None:
    """Run every stage; raise ExportError for anything the user can fix."""
    from converter import folding, geometry, tfjs_export

    module = registry.get(args.model)
    progress = Progress(6)
    names = [n.strip() for n in (args.layers or ",".join(module.DEFAULT_LAYERS)).split(",")
             if n.strip()]
    tfjs_export.check_writable(args.out)
    module.check_source(args)  # what the source's files alone refuse, before TensorFlow

    progress.begin("checking layers")
    quiet_tensorflow(TENSORFLOW_SETTINGS)
    progress.note("TensorFlow: " + ", ".join(f"{k}={v}" for k, v in TENSORFLOW_SETTINGS.items())
                  + " (the converter's own settings)")
    infos = module.usable_layers()
    try:
        check_layer_names(names, infos)
    except ValueError as error:
        raise ExportError(str(error)) from None
    progress.note(", ".join(names))
    progress.end()

    progress.begin("reading weights")
    weights, source = module.load_source(args)
    progress.note(f"{source['name']} sha256 {source['sha256'][:16]}...")
    progress.end()

    progress.begin(f"folding batch norm and rounding to {args.quantize} in numpy; "
                   "proving ImageNet weights")
    from converter import fidelity

    folded = module.fold(weights)
    stored = folding.rounded(folded, args.quantize)  # what the browser will hold, exactly
    model = module.build(folding.for_export(folded, args.quantize), names)
    classifier = module.classifier(weights)
    if classifier is None:
        progress.note("source has no classification head: top-5 proof skipped")
    else:
        labels = fidelity.imagenet_labels()
        for photo, pixels in fidelity.photos().items():
            top = fidelity.top5(classifier, pixels, labels, module.CLASSIFIER_SIZE)
            progress.note(f"{photo}: " + "; ".join(f"{label} {p:.2f}" for label, p in top))
    progress.end()

    with tfjs_export.staging(args.out) as scratch:
        progress.begin("exporting SavedModel, converting to TF.js, checking stored weights")
        tfjs_export.save_saved_model(model, names, scratch / "saved_model")
        out = scratch / "out"
        tfjs_export.convert(scratch / "saved_model", out, args.quantize)
        tfjs_export.name_outputs(out / "model.json", names)
        tfjs_export.canonicalise(out / "model.json")
        nodes = tfjs_export.output_nodes(out / "model.json", names)
        tfjs_export.check_stored_weights(out, model, stored)
        size = sum(f.stat().st_size for f in out.iterdir())
        progress.note(f"{size / 1e6:.2f} MB ({args.quantize}); every stored weight equals "
                      "numpy's, bit for bit")
        progress.end()

        progress.begin("checking TF.js against Keras on real photos")
        reference = module.build(stored, names)
        error = fidelity.compare(reference, out, nodes)
        progress.note(f"TF.js against Keras, same weights: largest relative error {error:.2e} "
                      f"(tolerance {fidelity.TFJS_TOLERANCE:g})")
        if not error <= fidelity.TFJS_TOLERANCE:
            raise ExportError(f"TF.js output differs from Keras: relative error {error:.2e} "
                              f"> {fidelity.TFJS_TOLERANCE:g}")
        quantization_error = fidelity.compare_models(
            module.build(stored, names, dtype="float64"),
            module.build(folded, names, dtype="float64"))
        bound = fidelity.QUANTIZATION_TOLERANCE[args.quantize]
        progress.note(f"{args.quantize} storage against the float32 fold: relative error "
                      f"{quantization_error:.2e} (tolerance {bound:g})")
        if not quantization_error <= bound:
            raise ExportError(f"{args.quantize} storage moves the outputs by "
                              f"{quantization_error:.2e} > {bound:g}")
        progress.end()

        progress.begin(f"writing {args.out}")
        min_side = geometry.smallest_side(reference)
        progress.note(f"smallest input side: {min_side} px; {size / 1e6:.2f} MB to download")
        manifest = build_manifest(args, module, names, infos, nodes, source,
                                  folding.shards_sha256(out), quantization_error, min_side, size)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    progress.end()
    progress.total()


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear line and exit status 1 for any user-fixable problem."""
    args = parse_args(argv)
    try:
        if args.list_layers:
            quiet_tensorflow(TENSORFLOW_SETTINGS)
            list_layers(registry.get(args.model))
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
