"""The converter on the real ImageNet weights: reproducible export on any CPU, the weights the
browser holds, both sources, bad input, and a kill in the middle of publishing.

No test writes into the checkout: every export goes to a temporary `--out` and is compared
with the committed models/mobilenet_v2. Three full exports (about 80 s each on 2 cores, half of
it the TF.js cpu-backend check): the default one with oneDNN forced on, the TF Hub source with
oneDNN forced off and one thread, and the one killed between its renames; plus two small ones
of two layers (float32, uint8).
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import OFFLINE_ENV, REPO, run_export
from weights_reference import assert_model_holds, tfjs_weights

MODEL_DIR = REPO / "models" / "mobilenet_v2"
ARTIFACTS = ("group1-shard1of1.bin", "manifest.json", "model.json")
CAT_CLASSES = {"tabby, tabby cat", "tiger cat", "Persian cat", "Siamese cat, Siamese",
               "Egyptian cat"}


def snapshot(directory: Path) -> dict[str, str]:
    """sha256 and mtime of every visible file under `directory`: proof it was left untouched.

    Hidden entries are the converter's scratch folders (git-ignored); tests that care assert
    separately that none is left.
    """
    return {
        str(p.relative_to(directory)): f"{hashlib.sha256(p.read_bytes()).hexdigest()} "
        f"{p.stat().st_mtime_ns}"
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    }


def assert_same_bytes(out: Path) -> None:
    """`out` holds exactly the committed artifacts: model.json (graph, weight manifest), the
    weight shard and manifest.json, byte for byte, and nothing else."""
    assert sorted(p.name for p in out.iterdir()) == sorted(ARTIFACTS)
    for name in ARTIFACTS:
        got, want = (out / name).read_bytes(), (MODEL_DIR / name).read_bytes()
        if got != want and name.endswith(".bin"):
            differ = np.sum(np.frombuffer(got, np.uint16) != np.frombuffer(want, np.uint16))
            pytest.fail(f"{name}: {differ} float16 words differ from the committed shard")
        assert got == want, f"{name} differs from the committed one"


@pytest.fixture(scope="module")
def tf_modules():
    """TensorFlow and the converter modules, imported quietly once for the in-process tests."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from converter import fidelity, folding, mobilenet_v2, sources, tfjs_export

    return fidelity, mobilenet_v2, sources, folding, tfjs_export


@pytest.fixture(scope="module")
def keras_weights(tf_modules):
    sources = tf_modules[2]
    weights, _ = sources.keras_file_weights(sources.default_weights_path(), sources.WEIGHTS_SHA256)
    return weights


@pytest.fixture(scope="module")
def stored_weights(tf_modules, keras_weights):
    """The committed model's weights as numpy computes them: fold, then float16 rounding."""
    _, mobilenet, _, folding, _ = tf_modules
    return folding.rounded(mobilenet.fold(keras_weights), "float16")


# oneDNN forced on, as TensorFlow chooses by itself on CPUs with AVX-512 VNNI/BF16 (issue 17):
# the converter must override it, and the bytes must not change.
ONEDNN_ON = {"TF_ENABLE_ONEDNN_OPTS": "1"}
# oneDNN off and one thread: TensorFlow's other kernels and summation orders.
ONEDNN_OFF_ONE_THREAD = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "1",
                         "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}
SETTINGS_LINE = "TensorFlow: TF_ENABLE_ONEDNN_OPTS=0 (the converter's own settings)"


@pytest.fixture(scope="module")
def default_export(tmp_path_factory):
    """`python converter/export.py --out TMP` with oneDNN forced on: made once."""
    out = tmp_path_factory.mktemp("default") / "mobilenet_v2"
    return out, run_export("--out", str(out), env=ONEDNN_ON)


# --- reproducible on every CPU ----------------------------------------------------------------

def test_default_export_rebuilds_the_committed_model_byte_for_byte(default_export):
    tracked = subprocess.run(["git", "ls-files", "models/mobilenet_v2"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert sorted(tracked) == [f"models/mobilenet_v2/{n}" for n in ARTIFACTS]
    out, result = default_export

    assert result.returncode == 0, result.stderr
    assert SETTINGS_LINE in result.stdout  # TF_ENABLE_ONEDNN_OPTS=1 in the caller's environment
    assert_same_bytes(out)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no scratch left
    # Progress for every stage, both fidelity figures and the total time are printed.
    for stage in range(1, 7):
        assert f"[{stage}/6]" in result.stdout
    assert "every stored weight equals numpy's, bit for bit" in result.stdout
    tfjs = float(re.search(r"same weights: largest relative error ([0-9.e+-]+)",
                           result.stdout).group(1))
    # 1.2e-6 measured on an Intel Xeon (float32 summation order); exactly 0 is a pass too.
    assert 0 <= tfjs <= 1e-4
    quantization = float(re.search(r"float16 storage against the float32 fold: relative error "
                                   r"([0-9.e+-]+)", result.stdout).group(1))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fidelity"]["quantization"]["relative_error"] == quantization
    assert re.search(r"^total \d+\.\d s$", result.stdout, re.M)
    # The top-5 proof is printed from the source model.
    assert re.search(r"chelsea: (Egyptian cat|tabby, tabby cat|tiger cat) ", result.stdout)
    assert "coffee: espresso " in result.stdout


def test_private_graph_attributes_never_reach_model_json(tmp_path):
    """What oneDNN's graph passes add (`_input_shapes` on 45 nodes, issue 17), or any other
    `_`-prefixed TensorFlow attribute, is dropped: canonicalise gives the committed bytes back
    from a model.json that carries them."""
    from converter import tfjs_export

    data = json.loads((MODEL_DIR / "model.json").read_text())
    nodes = data["modelTopology"]["node"]
    for node in nodes[::2]:
        node.setdefault("attr", {})["_input_shapes"] = {"list": {"shape": [{"dim": []}]}}
    nodes[1].setdefault("attr", {})["_grappler_hint"] = {"b": True}
    copy = tmp_path / "model.json"
    copy.write_text(json.dumps(data, indent=1))
    assert copy.read_bytes() != (MODEL_DIR / "model.json").read_bytes()
    tfjs_export.canonicalise(copy)
    assert copy.read_bytes() == (MODEL_DIR / "model.json").read_bytes()


def test_min_side_comes_from_the_geometry_and_the_network_agrees(tf_modules, stored_weights):
    """`input.min_side` is arithmetic on padding, kernel and stride (converter/geometry.py),
    not whether a kernel raises (oneDNN returns empty tensors instead, issue 17). Checked
    against Keras's own shape inference and the network itself, at min_side and one less."""
    import keras

    from converter import geometry

    _, mobilenet, _, _, _ = tf_modules
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    model = mobilenet.build(stored_weights, [o["layer"] for o in manifest["outputs"]])
    side = manifest["input"]["min_side"]
    assert geometry.smallest_side(model) == side == 31
    with pytest.raises(ValueError, match="zero or negative"):  # Keras's shape arithmetic
        model.compute_output_spec(keras.KerasTensor((1, side - 1, side - 1, 3)))
    sides = geometry.output_sides(model, side, side)
    outputs = model(np.zeros((1, side, side, 3), np.float32))
    for output, entry in zip(outputs, manifest["outputs"], strict=True):
        assert tuple(output.shape[1:3]) == sides[entry["layer"]] and output.shape[1] > 0
    # Rectangles and odd sides too: the arithmetic is the network's, layer for layer.
    for height, width in ((67, 83), (300, 451), (side, 2 * side + 1)):
        sides = geometry.output_sides(model, height, width)
        outputs = model(np.zeros((1, height, width, 3), np.float32))
        assert [tuple(o.shape[1:3]) for o in outputs] == [
            sides[o["layer"]] for o in manifest["outputs"]]


def test_folded_network_computes_what_keras_applications_computes(tf_modules, keras_weights):
    """Batch norm folded in numpy, rebuilt without it: every usable layer, same names, same
    shapes (chelsea is 300x451: odd sizes exercise the stride-2 padding), same values up to
    float32 rounding."""
    fidelity, mobilenet, _, _, _ = tf_modules
    reference_names = [layer.name for layer in mobilenet.reference((224, 224, 3)).layers
                       if mobilenet.is_usable(layer.name)]
    names = [info.name for info in mobilenet.usable_layers()]
    assert names == reference_names and len(names) == 62
    assert set(mobilenet.DEFAULT_LAYERS) <= set(names)

    photo = fidelity.preprocess(fidelity.photos()["chelsea"])
    folded = mobilenet.build(mobilenet.fold(keras_weights), names)(photo)
    reference = mobilenet.reference_outputs(keras_weights, names)(photo)
    errors = {name: fidelity.relative_error(np.asarray(a), np.asarray(b))
              for name, a, b in zip(names, folded, reference, strict=True)}
    assert max(errors[name] for name in mobilenet.DEFAULT_LAYERS) < 5e-6, errors
    assert max(errors.values()) < 2e-5, errors  # out_relu, 17 blocks deep: ~5e-6


def test_stored_weights_are_numpys_bit_for_bit(tf_modules, keras_weights, stored_weights):
    """Decode the committed shard as tfjs does (per model.json's weightsManifest, float16 to
    float32) and compare every tensor with numpy's fold and rounding, bit for bit."""
    _, mobilenet, _, folding, tfjs_export = tf_modules
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    model = mobilenet.build(stored_weights, [o["layer"] for o in manifest["outputs"]])
    tfjs_export.check_stored_weights(MODEL_DIR, model, stored_weights)  # raises if not

    decoded = folding.decode_weights(MODEL_DIR)
    floats = [v for v in decoded.values() if v.dtype == np.float32]
    assert sum(v.size for v in floats) == model.count_params()
    assert manifest["model"]["weights_sha256"] == folding.shards_sha256(MODEL_DIR)

    from converter.errors import ExportError

    off_by_one_ulp = {k: [a.copy() for a in v] for k, v in stored_weights.items()}
    kernel = off_by_one_ulp["block_8_depthwise"][0]
    kernel.flat[7] = np.nextafter(np.float16(kernel.flat[7]), np.float16(np.inf))
    with pytest.raises(ExportError, match="block_8_depthwise differ from numpy's in 1 of"):
        tfjs_export.check_stored_weights(MODEL_DIR, model, off_by_one_ulp)


def test_committed_model_is_float16_sized_and_the_manifest_describes_it(tf_modules,
                                                                        stored_weights):
    _, mobilenet, _, _, _ = tf_modules
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    names = [o["layer"] for o in manifest["outputs"]]
    parameters = mobilenet.build(stored_weights, names).count_params()
    # Two bytes per weight plus a few int32 padding constants: a float32 export (4 bytes per
    # weight) or one with a layer too many cannot pass.
    shard = (MODEL_DIR / "group1-shard1of1.bin").stat().st_size
    assert 2 * parameters <= shard <= 2 * parameters + 1024
    assert (MODEL_DIR / "model.json").stat().st_size < 200_000
    assert manifest["model"]["quantization"] == "float16"
    assert manifest["model"]["file"] == "model.json"
    assert manifest["input"]["range"] == [-1.0, 1.0]
    assert manifest["source"]["sha256"] == (
        "3e195a2857356cfc092cbbb460beb2a5bce279015d7792598b8d3d9e451902e3")
    strides = [o["stride"] for o in manifest["outputs"]]
    assert strides == sorted(strides) and strides[0] <= 4 and strides[-1] == 32
    assert [o["index"] for o in manifest["outputs"]] == list(range(len(strides)))
    for output in manifest["outputs"]:
        assert set(output) >= {"index", "layer", "node", "stride", "channels", "label"}
    model_json = json.loads((MODEL_DIR / "model.json").read_text())
    assert model_json["format"] == "graph-model"
    nodes = {n["name"] for n in model_json["modelTopology"]["node"]}
    assert all(o["node"] in nodes for o in manifest["outputs"])
    quantization = manifest["fidelity"]["quantization"]
    assert 0 < quantization["relative_error"] <= quantization["tolerance"] <= 5e-2


def test_native_load_model_holds_the_browsers_weights(tmp_path):
    """Against tfjs's own loading of the committed shard (tests/weights_reference.py), not the
    numpy fold the native model was built from."""
    from converter.errors import ExportError
    from native import tf_backend

    model, manifest = tf_backend.load_model()
    assert manifest == json.loads((MODEL_DIR / "manifest.json").read_text())
    scratch = tmp_path / "tfjs"
    scratch.mkdir()
    assert_model_holds(model, tfjs_weights(MODEL_DIR, scratch))
    assert len(model.outputs) == len(manifest["outputs"])

    # A manifest that claims another storage than its shard holds is refused.
    copy = tmp_path / "mobilenet_v2"
    shutil.copytree(MODEL_DIR, copy)
    manifest["model"]["quantization"] = "float32"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="differ from numpy's"):
        tf_backend.load_model(copy / "manifest.json")


def test_list_layers_shows_every_usable_layer_with_stride_and_channels():
    result = run_export("--list-layers")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in result.stdout.splitlines()[1:]}
    assert rows["Conv1_relu"] == ["2", "32"]
    assert rows["block_2_add"] == ["4", "24"]
    assert rows["block_12_expand_relu"] == ["16", "576"]
    assert rows["out_relu"] == ["32", "1280"]
    assert sum("(default)" in line for line in result.stdout.splitlines()) == 5


def test_list_layers_of_the_classic_model():
    result = run_export("--list-layers", "--model", "inception_v3")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in result.stdout.splitlines()[1:]}
    assert rows["activation_5"] == ["4", "192"]
    assert rows["mixed3"] == ["16", "768"] and rows["mixed5"] == ["16", "768"]
    assert "Conv1_relu" not in rows and list(rows)[-1] == "mixed5"
    assert sum("(default)" in line for line in result.stdout.splitlines()) == 6


def test_float32_and_uint8_exports_of_chosen_layers(tmp_path, tf_modules, keras_weights):
    """`--quantize float32|uint8` with `--layers`: both exports at once (one core each), small
    (two layers). float32 holds the numpy fold exactly, as tfjs loads it; uint8 is a quarter
    of float32's bytes and measurably coarser than float16; the outputs are the chosen layers
    in order, and min_side fits the deepest one (stride 8: 7 px)."""
    _, mobilenet, _, folding, _ = tf_modules
    layers = ["block_2_add", "block_5_expand_relu"]
    runs = {}
    for quantize in ("float32", "uint8"):
        out = tmp_path / quantize / "mobilenet_v2"
        runs[quantize] = (out, subprocess.Popen(
            [sys.executable, "converter/export.py", "--out", str(out), "--quantize", quantize,
             "--layers", ",".join(layers)], cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, **OFFLINE_ENV}))
    manifests = {}
    for quantize, (out, process) in runs.items():
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        manifest = json.loads((out / "manifest.json").read_text())
        manifests[quantize] = manifest
        assert manifest["model"]["quantization"] == quantize
        assert [o["layer"] for o in manifest["outputs"]] == layers
        assert [o["stride"] for o in manifest["outputs"]] == [4, 8]
        assert manifest["input"]["min_side"] == 7
        signature = json.loads((out / "model.json").read_text())["signature"]["outputs"]
        assert sorted(signature) == ["out_0_block_2_add", "out_1_block_5_expand_relu"]

    float32_dir, uint8_dir = runs["float32"][0], runs["uint8"][0]
    model = mobilenet.build(mobilenet.fold(keras_weights), layers)
    scratch = tmp_path / "tfjs"
    scratch.mkdir()
    assert_model_holds(model, tfjs_weights(float32_dir, scratch))  # exact float32 fold
    parameters = model.count_params()
    float32_bytes = (float32_dir / "group1-shard1of1.bin").stat().st_size
    uint8_bytes = (uint8_dir / "group1-shard1of1.bin").stat().st_size
    assert 4 * parameters <= float32_bytes <= 4 * parameters + 1024
    # uint8 for ordinary convolution kernels, float16 for depthwise kernels and biases
    # (converter/folding.py says why), a few int32 padding constants.
    kernels = sum(w.numpy().size for layer in model.layers for w in layer.weights[:1]
                  if type(layer).__name__ == "Conv2D")
    assert kernels + 2 * (parameters - kernels) <= uint8_bytes
    assert uint8_bytes <= kernels + 2 * (parameters - kernels) + 1024
    committed = json.loads((MODEL_DIR / "manifest.json").read_text())["fidelity"]
    error = manifests["uint8"]["fidelity"]["quantization"]["relative_error"]
    assert committed["quantization"]["relative_error"] < error
    assert error <= manifests["uint8"]["fidelity"]["quantization"]["tolerance"]
    assert manifests["float32"]["fidelity"]["quantization"]["relative_error"] == 0


def test_help_explains_every_option_with_its_default():
    result = run_export("--help")
    assert result.returncode == 0
    for option in ("--model", "--source", "--weights", "--sha256", "--handle", "--layers",
                   "--list-layers", "--quantize", "--out"):
        assert option in result.stdout
    assert result.stdout.count("(default:") >= 6


def _corrupt_copy(tmp_path: Path, sources) -> Path:
    copy = tmp_path / "weights.h5"
    data = bytearray(sources.default_weights_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    return copy


BAD_INPUTS = {
    "unknown layer": (lambda tmp, s: ["--layers", "block_2_add,not_a_layer"],
                      r"unknown layer not_a_layer; valid layers: Conv1_relu, .*out_relu"),
    "wrong sha256": (lambda tmp, s: ["--weights", str(_corrupt_copy(tmp, s))],
                     r"sha256 mismatch for .*weights\.h5: got [0-9a-f]{64}, expected 3e195a"),
    "missing weights file": (lambda tmp, s: ["--weights", str(tmp / "nowhere.h5")],
                             r"weights file not found: .*nowhere\.h5"),
    "unwritable output folder": (lambda tmp, s: ["--out", str(_a_file(tmp) / "model")],
                                 r"output folder .* is not writable"),
    "unreachable handle": (lambda tmp, s: ["--source", "hub", "--handle",
                                           "https://tfhub.dev/google/imagenet/"
                                           "mobilenet_v2_100_224/feature_vector/5"],
                           r"cannot load TF Hub handle https://tfhub\.dev/.*: .*offline\?.*"),
}


def _a_file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_line_and_leaves_models_untouched(case, tmp_path, tf_modules):
    make_args, message = BAD_INPUTS[case]
    args = make_args(tmp_path, tf_modules[2])
    out = tmp_path / "out"
    before = snapshot(REPO / "models")

    result = run_export(*args, *([] if "--out" in args else ["--out", str(out)]))

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.match("error: " + message, lines[0]), lines[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch left
    assert snapshot(REPO / "models") == before


def test_keras_source_classifies_real_photos(tf_modules, keras_weights):
    fidelity, mobilenet, _, _, _ = tf_modules
    classifier = mobilenet.classifier(keras_weights)
    labels = fidelity.imagenet_labels()
    assert len(labels) == 1000 and labels[967] == "espresso"
    photos = fidelity.photos()
    top_cat = fidelity.top5(classifier, photos["chelsea"], labels)
    top_coffee = fidelity.top5(classifier, photos["coffee"], labels)
    assert top_cat[0][0] in CAT_CLASSES and top_cat[0][1] > 0.3
    assert top_coffee[0][0] == "espresso" and top_coffee[0][1] > 0.8


def test_fidelity_check_fails_for_a_model_that_differs(tf_modules, keras_weights,
                                                       stored_weights):
    """TF.js against Keras with the same stored weights is ~1e-6; a 1% change to one early
    layer must be far outside the tolerance, or the check could not catch a real fault."""
    fidelity, mobilenet, _, _, _ = tf_modules
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    names = [o["layer"] for o in manifest["outputs"]]
    nodes = [o["node"] for o in manifest["outputs"]]
    tfjs = fidelity.tfjs_photo_outputs(MODEL_DIR, nodes)  # the slow part: run once
    good = mobilenet.build(stored_weights, names)
    assert fidelity.compare(good, MODEL_DIR, nodes, tfjs) <= fidelity.TFJS_TOLERANCE / 10

    altered = {k: [a.copy() for a in v] for k, v in stored_weights.items()}
    altered["block_4_expand"][0] *= 1.01
    wrong = mobilenet.build(altered, names)
    assert fidelity.compare(wrong, MODEL_DIR, nodes, tfjs) > 10 * fidelity.TFJS_TOLERANCE


# --- the TF Hub path, fed a TF-Slim SavedModel built here from the real weights -----------

def slim_name(keras_layer: str, weight: str) -> str:
    """TF-Slim variable name for one Keras weight, written independently of converter/naming."""
    if keras_layer == "predictions":
        slim = {"kernel": "weights", "bias": "biases"}[weight]
        return f"MobilenetV2/Logits/Conv2d_1c_1x1/{slim}"
    scope = {"Conv1": "Conv", "bn_Conv1": "Conv", "Conv_1": "Conv_1", "Conv_1_bn": "Conv_1"}.get(
        keras_layer)
    if scope is None:
        scope = re.sub(r"^block_(\d+)_", r"expanded_conv_\1/", keras_layer)
        scope = re.sub(r"^expanded_conv_(depthwise|project)", r"expanded_conv/\1", scope)
        scope = scope.removesuffix("_BN")
    if weight in ("gamma", "beta", "moving_mean", "moving_variance"):
        return f"MobilenetV2/{scope}/BatchNorm/{weight}"
    return f"MobilenetV2/{scope}/{'depthwise_weights' if 'depthwise' in scope else 'weights'}"


def build_slim_savedmodel(directory: Path, keras_weights: dict, mobilenet) -> None:
    """A SavedModel shaped like TF Hub's mobilenet_v2_100_224/classification (TF-Slim names,
    1001-class head with background at 0), holding the real ImageNet weights."""
    import tensorflow as tf

    model = mobilenet.reference((224, 224, 3), include_top=True)
    variables = []
    rng = np.random.default_rng(0)
    for layer in model.layers:
        for weight, value in zip(layer.weights, keras_weights.get(layer.name, []), strict=True):
            name = slim_name(layer.name, weight.name)
            if layer.name == "predictions":  # Slim: 1x1 conv, 1001 classes, 0 = background
                background = rng.normal(size=value.shape[:-1] + (1,)).astype(np.float32)
                value = np.concatenate([background, value], axis=-1)
                value = value.reshape((1, 1) + value.shape) if value.ndim == 2 else value
            variables.append(tf.Variable(value, name=name))
    tf.saved_model.save(tf.train.Checkpoint(variables=variables), str(directory))


@pytest.fixture(scope="module")
def slim_savedmodel(tmp_path_factory, tf_modules, keras_weights):
    """The TF-Slim SavedModel of the real weights (`build_slim_savedmodel`), made once for
    the module; a test that damages it damages a copy."""
    directory = tmp_path_factory.mktemp("hub") / "mobilenet_v2_100_224_slim"
    build_slim_savedmodel(directory, keras_weights, tf_modules[1])
    return directory


def test_hub_path_gives_exactly_the_keras_model(tmp_path, tf_modules, keras_weights,
                                                slim_savedmodel):
    fidelity, mobilenet, sources, _, _ = tf_modules
    hub_dir = slim_savedmodel

    hub_weights, info = sources.hub_weights(str(hub_dir))
    assert info["kind"] == "tf-hub"
    assert sorted(hub_weights) == sorted(keras_weights)
    for name, arrays in keras_weights.items():
        for hub_array, keras_array in zip(hub_weights[name], arrays, strict=True):
            np.testing.assert_array_equal(hub_array, keras_array, err_msg=name)

    photo = fidelity.preprocess(fidelity.photos()["chelsea"])
    names = list(mobilenet.DEFAULT_LAYERS)
    from_hub = mobilenet.build(mobilenet.fold(hub_weights), names)(photo)
    from_keras = mobilenet.build(mobilenet.fold(keras_weights), names)(photo)
    for a, b in zip(from_hub, from_keras, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # And end to end through the command line, with oneDNN forced off and one thread (the
    # default export above has it forced on): the same TF.js artifacts as the Keras path.
    out = tmp_path / "exported"
    result = run_export("--source", "hub", "--handle", str(hub_dir), "--out", str(out),
                        env=ONEDNN_OFF_ONE_THREAD)
    assert result.returncode == 0, result.stderr
    assert SETTINGS_LINE in result.stdout
    assert "chelsea: " in result.stdout  # the kept (background-dropped) head classifies
    for artifact in ("model.json", "group1-shard1of1.bin"):
        assert (out / artifact).read_bytes() == (MODEL_DIR / artifact).read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    committed = json.loads((MODEL_DIR / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "tf-hub"
    assert {**manifest, "source": None} == {**committed, "source": None}


# --- failures in the middle, and broken sources -------------------------------------------

def test_an_export_killed_between_its_renames_is_mended_by_the_next_run(tmp_path):
    """The one moment `--out` does not exist: publish() has moved the previous export to
    `.NAME.old` and not yet moved the new one in. A kill there, then recover() (which every
    run calls first) must put the previous export back and clear the scratch folder."""
    from converter import tfjs_export

    target = tmp_path / "mobilenet_v2"
    shutil.copytree(MODEL_DIR, target)
    (target / "previous-export").write_text("the export before the killed one")
    before = snapshot(target)
    process = subprocess.Popen(
        [sys.executable, "converter/export.py", "--out", str(target), "--layers", "Conv1_relu"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **OFFLINE_ENV, tfjs_export.PUBLISH_PAUSE_ENV: "120"})
    try:
        seen = []
        for line in process.stderr:
            seen.append(line)
            if line.startswith("publish: paused between renames"):
                break
        assert seen and seen[-1].startswith("publish: paused"), "".join(seen[-5:])
        assert not target.exists()  # really between the two renames
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    backup = tmp_path / ".mobilenet_v2.old"
    assert snapshot(backup) == before
    assert list(tmp_path.glob(".mobilenet_v2.tmp*"))  # the new export, left in its scratch

    tfjs_export.recover(target)  # restore branch: the backup goes back in place

    assert snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobilenet_v2"]

    # A kill after the second rename leaves a finished export and a stale backup: removed.
    backup.mkdir()
    (backup / "model.json").write_text("{}")
    tfjs_export.recover(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobilenet_v2"]
    assert snapshot(target) == before


def test_a_corrupt_weights_file_is_refused_even_with_its_own_sha256(tmp_path, tf_modules):
    sources = tf_modules[2]
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(sources.default_weights_path().read_bytes()[:4_000_000])
    result = run_export("--weights", str(corrupt), "--sha256", sources.sha256_file(corrupt),
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert re.fullmatch(r"error: cannot read weights from .*corrupt\.h5: .+",
                        result.stderr.strip())
    assert not (tmp_path / "out").exists()


def test_a_truncated_savedmodel_and_a_wrong_handle_give_clear_errors(tmp_path,
                                                                     slim_savedmodel):
    hub_dir = tmp_path / "slim"
    shutil.copytree(slim_savedmodel, hub_dir)
    pb = hub_dir / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 3])
    out = ["--out", str(tmp_path / "out")]
    truncated = run_export("--source", "hub", "--handle", str(hub_dir), *out)
    assert truncated.returncode == 1
    assert re.fullmatch(r"error: cannot load TF Hub handle .*slim: .+", truncated.stderr.strip())

    import tensorflow as tf

    other = tmp_path / "not_mobilenet"
    tf.saved_model.save(tf.train.Checkpoint(variables=[tf.Variable([1.0], name="w")]),
                        str(other))
    wrong = run_export("--source", "hub", "--handle", str(other), *out)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        f"error: TF Hub handle {other} is not a MobileNetV2 1.0 (TF-Slim names): "
        "no variable MobilenetV2/Conv/weights")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = run_export("--source", "hub", "--handle", str(empty), *out)
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith(f"error: cannot load TF Hub handle {empty}: ")


def test_every_model_takes_the_value_range_the_engine_scales_pixels_to():
    """The page and native code scale pixels with dreamengine.presets.VALUE_RANGE only."""
    from dreamengine.presets import VALUE_RANGE

    for manifest in sorted((REPO / "models").glob("*/manifest.json")):
        assert tuple(json.loads(manifest.read_text())["input"]["range"]) == VALUE_RANGE, manifest
