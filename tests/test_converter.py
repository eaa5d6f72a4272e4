"""The converter on the real ImageNet weights: reproducible export, both sources, bad input."""

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_export

MODEL_DIR = REPO / "models" / "mobilenet_v2"
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


@pytest.fixture(scope="module")
def tf_modules():
    """TensorFlow and the converter modules, imported quietly once for the in-process tests."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from converter import fidelity, mobilenet, sources

    return fidelity, mobilenet, sources


@pytest.fixture(scope="module")
def keras_weights(tf_modules):
    _, _, sources = tf_modules
    weights, _ = sources.keras_file_weights(sources.default_weights_path(), sources.WEIGHTS_SHA256)
    return weights


def test_default_export_rebuilds_the_committed_model_byte_for_byte():
    tracked = subprocess.run(["git", "ls-files", "models/mobilenet_v2"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert sorted(tracked) == [f"models/mobilenet_v2/{n}" for n in
                               ("group1-shard1of1.bin", "manifest.json", "model.json")]
    before = {name: h.split()[0] for name, h in snapshot(MODEL_DIR).items()}

    result = run_export()

    assert result.returncode == 0, result.stderr
    after = {name: h.split()[0] for name, h in snapshot(MODEL_DIR).items()}
    assert after == before
    # Progress for every stage, the fidelity figure and the total time are printed.
    for stage in range(1, 7):
        assert f"[{stage}/6]" in result.stdout
    error = float(re.search(r"largest relative error ([0-9.e+-]+)", result.stdout).group(1))
    assert 0 < error <= 1e-2
    assert re.search(r"^total \d+\.\d s$", result.stdout, re.M)
    # The top-5 proof is printed from the source model.
    assert re.search(r"chelsea: (Egyptian cat|tabby, tabby cat|tiger cat) ", result.stdout)
    assert "coffee: espresso " in result.stdout


def test_committed_model_is_small_and_the_manifest_describes_it():
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    size = sum(p.stat().st_size for p in MODEL_DIR.iterdir())
    assert size < 5_000_000
    assert manifest["model"]["quantization"] == "float16"
    assert manifest["input"]["range"] == [-1.0, 1.0]
    assert manifest["source"]["sha256"] == (
        "3e195a2857356cfc092cbbb460beb2a5bce279015d7792598b8d3d9e451902e3")
    strides = [o["stride"] for o in manifest["outputs"]]
    assert strides == sorted(strides) and strides[0] <= 4 and strides[-1] == 32
    assert [o["index"] for o in manifest["outputs"]] == list(range(len(strides)))
    model_json = json.loads((MODEL_DIR / "model.json").read_text())
    assert model_json["format"] == "graph-model"
    nodes = {n["name"] for n in model_json["modelTopology"]["node"]}
    assert all(o["node"] in nodes for o in manifest["outputs"])


def test_list_layers_shows_every_usable_layer_with_stride_and_channels():
    result = run_export("--list-layers")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in result.stdout.splitlines()[1:]}
    assert rows["Conv1_relu"] == ["2", "32"]
    assert rows["block_2_add"] == ["4", "24"]
    assert rows["block_12_expand_relu"] == ["16", "576"]
    assert rows["out_relu"] == ["32", "1280"]
    assert sum("(default)" in line for line in result.stdout.splitlines()) == 5


def test_help_explains_every_option_with_its_default():
    result = run_export("--help")
    assert result.returncode == 0
    for option in ("--source", "--weights", "--sha256", "--handle", "--layers",
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
    before = snapshot(REPO / "models")

    result = run_export(*make_args(tmp_path, tf_modules[2]))

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.match("error: " + message, lines[0]), lines[0]
    assert snapshot(REPO / "models") == before
    assert not list((REPO / "models").glob(".*"))  # no scratch folder left behind


def test_keras_source_classifies_real_photos(tf_modules, keras_weights):
    fidelity, mobilenet, _ = tf_modules
    classifier = mobilenet.classifier(keras_weights)
    labels = fidelity.imagenet_labels()
    assert len(labels) == 1000 and labels[967] == "espresso"
    photos = fidelity.photos()
    top_cat = fidelity.top5(classifier, photos["chelsea"], labels)
    top_coffee = fidelity.top5(classifier, photos["coffee"], labels)
    assert top_cat[0][0] in CAT_CLASSES and top_cat[0][1] > 0.3
    assert top_coffee[0][0] == "espresso" and top_coffee[0][1] > 0.8


def test_fidelity_check_fails_for_a_model_that_differs(tf_modules, keras_weights):
    fidelity, mobilenet, _ = tf_modules
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    names = [o["layer"] for o in manifest["outputs"]]
    nodes = [o["node"] for o in manifest["outputs"]]
    good = mobilenet.multi_output(mobilenet.backbone(keras_weights), names)
    assert fidelity.compare(good, MODEL_DIR, nodes) <= fidelity.TOLERANCE["float16"]

    altered = {k: [a.copy() for a in v] for k, v in keras_weights.items()}
    altered["block_4_expand"][0] *= 1.1  # a 10% error in one early layer
    wrong = mobilenet.multi_output(mobilenet.backbone(altered), names)
    assert fidelity.compare(wrong, MODEL_DIR, nodes) > fidelity.TOLERANCE["float16"]


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

    model = mobilenet.architecture((224, 224, 3), include_top=True)
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


def test_hub_path_gives_exactly_the_keras_model(tmp_path, tf_modules, keras_weights):
    fidelity, mobilenet, sources = tf_modules
    hub_dir = tmp_path / "mobilenet_v2_100_224_slim"
    build_slim_savedmodel(hub_dir, keras_weights, mobilenet)

    hub_weights, info = sources.hub_weights(str(hub_dir))
    assert info["kind"] == "tf-hub"
    assert sorted(hub_weights) == sorted(keras_weights)
    for name, arrays in keras_weights.items():
        for hub_array, keras_array in zip(hub_weights[name], arrays, strict=True):
            np.testing.assert_array_equal(hub_array, keras_array, err_msg=name)

    photo = fidelity.preprocess(fidelity.photos()["chelsea"])
    names = list(mobilenet.DEFAULT_LAYERS)
    from_hub = mobilenet.multi_output(mobilenet.backbone(hub_weights), names)(photo)
    from_keras = mobilenet.multi_output(mobilenet.backbone(keras_weights), names)(photo)
    for a, b in zip(from_hub, from_keras, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # And end to end through the command line: the same TF.js artifacts as the Keras path.
    out = tmp_path / "exported"
    result = run_export("--source", "hub", "--handle", str(hub_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "chelsea: " in result.stdout  # the kept (background-dropped) head classifies
    for artifact in ("model.json", "group1-shard1of1.bin"):
        assert (out / artifact).read_bytes() == (MODEL_DIR / artifact).read_bytes()
    assert json.loads((out / "manifest.json").read_text())["source"]["kind"] == "tf-hub"
    shutil.rmtree(out)


# --- failures in the middle, and broken sources -------------------------------------------

def test_an_export_killed_mid_way_leaves_models_intact(tmp_path):
    import signal
    import sys
    import time

    before = snapshot(REPO / "models")
    process = subprocess.Popen([sys.executable, "converter/export.py"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:  # kill it while it writes its scratch copy
        if line.startswith("[5/6]"):
            time.sleep(1)
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert snapshot(REPO / "models") == before  # hidden scratch folders aside, nothing moved
    # The next run clears the scratch folder the killed one left, and rebuilds the same model.
    result = run_export()
    assert result.returncode == 0, result.stderr
    assert not list((REPO / "models").glob(".*"))
    assert {k: v.split()[0] for k, v in snapshot(REPO / "models").items()} == {
        k: v.split()[0] for k, v in before.items()}


def test_a_corrupt_weights_file_is_refused_even_with_its_own_sha256(tmp_path, tf_modules):
    _, _, sources = tf_modules
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(sources.default_weights_path().read_bytes()[:4_000_000])
    result = run_export("--weights", str(corrupt), "--sha256", sources.sha256_file(corrupt),
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert re.fullmatch(r"error: cannot read weights from .*corrupt\.h5: .+",
                        result.stderr.strip())
    assert not (tmp_path / "out").exists()


def test_a_truncated_savedmodel_and_a_wrong_handle_give_clear_errors(tmp_path, tf_modules,
                                                                     keras_weights):
    _, mobilenet, _ = tf_modules
    hub_dir = tmp_path / "slim"
    build_slim_savedmodel(hub_dir, keras_weights, mobilenet)
    pb = hub_dir / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 3])
    truncated = run_export("--source", "hub", "--handle", str(hub_dir))
    assert truncated.returncode == 1
    assert re.fullmatch(r"error: cannot load TF Hub handle .*slim: .+", truncated.stderr.strip())

    import tensorflow as tf

    other = tmp_path / "not_mobilenet"
    tf.saved_model.save(tf.train.Checkpoint(variables=[tf.Variable([1.0], name="w")]),
                        str(other))
    wrong = run_export("--source", "hub", "--handle", str(other))
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        f"error: TF Hub handle {other} is not a MobileNetV2 1.0 (TF-Slim names): "
        "no variable MobilenetV2/Conv/weights")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = run_export("--source", "hub", "--handle", str(empty))
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith(f"error: cannot load TF Hub handle {empty}: ")
