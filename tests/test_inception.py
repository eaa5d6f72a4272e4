"""InceptionV3 (issue 14): the committed export reproduced byte for byte, the rebuild against
nsfwjs's own TF.js model, refusals, the manifest's model-agnostic fields, a native dream.

One export in all (about 70 s on 2 cores, most of it the TF.js cpu-backend check, which is
single-threaded JavaScript), into a temporary folder, never into the checkout. It starts in
the background when the module does and is checked by the last test, so the other tests use
the second core meanwhile. The nsfwjs reference runs nsfwjs's bundled layers model under Node
on a real photo.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import OFFLINE_ENV, PYTHON, REPO, run_export
from weights_reference import assert_model_holds, tfjs_weights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODEL_DIR = REPO / "models" / "inception_v3"
MOBILENET_DIR = REPO / "models" / "mobilenet_v2"
REFERENCE_SCRIPT = Path(__file__).with_name("nsfwjs_reference.mjs")


def committed_files(folder: Path) -> list[str]:
    """The files git tracks in `folder`, by name."""
    tracked = subprocess.run(["git", "ls-files", str(folder.relative_to(REPO))], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    return sorted(Path(p).name for p in tracked)


@pytest.fixture(scope="module", autouse=True)
def background_export(tmp_path_factory):
    """`python converter/export.py --model inception_v3 --out TMP`, started at once."""
    out = tmp_path_factory.mktemp("export") / "inception_v3"
    process = subprocess.Popen(
        [sys.executable, "converter/export.py", "--model", "inception_v3", "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **OFFLINE_ENV, "TF_ENABLE_ONEDNN_OPTS": "1"})  # overridden: issue 17
    yield out, process
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def native_model(native_backend):
    """The network and manifest (`tf_backend.load_model`, which checks the shards too)."""
    ops, manifest = native_backend("inception_v3")
    return ops.model, manifest


@pytest.fixture(scope="module")
def modules():
    from converter import fidelity, folding, inception_v3, nsfwjs_source

    return {"fidelity": fidelity, "folding": folding, "inception": inception_v3,
            "source": nsfwjs_source}


@pytest.fixture(scope="module")
def source_weights(modules):
    return modules["source"].weights()


@pytest.fixture(scope="module")
def photo():
    """The cat sample at 227x150 px: real, and small enough for tfjs's cpu backend."""
    from PIL import Image

    with Image.open(REPO / "web" / "samples" / "chelsea.jpg") as image:
        return np.asarray(image.convert("RGB").resize((227, 150), Image.LANCZOS))


def test_manifest_says_what_a_model_agnostic_engine_needs(modules):
    inception = modules["inception"]
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    assert manifest["model"]["name"] == "inception_v3"
    assert manifest["model"]["quantization"] == "float16"
    assert manifest["input"]["range"] == [-1.0, 1.0]
    # min_side is the converter's geometry (converter/geometry.py); here it is checked against
    # the module's own arithmetic and Keras's shape inference (the 'valid' stem and mixed3
    # leave 1x1 at 43 px).
    import keras

    from converter import geometry

    deepest = manifest["outputs"][-1]["layer"]
    assert manifest["input"]["min_side"] == 43
    assert inception.side_after(43, deepest) == 1 and inception.side_after(42, deepest) == 0
    network = inception.build(inception.fold(modules["source"].weights()),
                              [o["layer"] for o in manifest["outputs"]])
    assert geometry.smallest_side(network) == 43
    with pytest.raises(ValueError, match="zero or negative"):
        network.compute_output_spec(keras.KerasTensor((1, 42, 42, 3)))
    outputs = network(np.zeros((1, 43, 43, 3), np.float32))
    assert all(o.shape[1] == o.shape[2] == 1 for o in outputs[-3:])
    infos = {info.name: info for info in inception.usable_layers()}
    for output in manifest["outputs"]:
        info = infos[output["layer"]]
        assert (output["stride"], output["channels"]) == (info.stride, info.channels)
    assert [o["layer"] for o in manifest["outputs"]] == list(inception.DEFAULT_LAYERS)
    assert manifest["source"]["files_sha256"] == modules["source"].FILE_SHA256
    assert manifest["source"]["package"] == "nsfwjs@4.4.0"
    # size_bytes is what the page downloads: model.json and the weight shards.
    for folder in (MODEL_DIR, MOBILENET_DIR):
        manifest = json.loads((folder / "manifest.json").read_text())
        downloaded = sum((folder / n).stat().st_size for n in committed_files(folder)
                         if n != "manifest.json")
        assert manifest["model"]["size_bytes"] == downloaded
    assert json.loads((MOBILENET_DIR / "manifest.json").read_text())["input"]["min_side"] == 31
    # Two bytes per weight (float16), plus a few int32 constants: 5.1 M weights up to mixed5.
    params = sum(a.size for v in inception.fold(modules["source"].weights()).values()
                 for a in v)
    shards = sum(p.stat().st_size for p in MODEL_DIR.glob("group1-shard*.bin"))
    assert 5_000_000 < params < 5_200_000
    assert 2 * params <= shards <= 2 * params + 4096


def test_native_load_model_holds_the_browsers_weights(native_model, tmp_path):
    """Against tfjs's own loading of the committed shards, not the fold the model came from."""
    model, manifest = native_model
    assert_model_holds(model, tfjs_weights(MODEL_DIR, tmp_path))
    assert len(model.outputs) == len(manifest["outputs"])


# --- against nsfwjs's own model -------------------------------------------------------------

def test_rebuild_matches_nsfwjs_own_tfjs_model(modules, source_weights, tmp_path):
    """nsfwjs's layers model (tfjs cpu backend, its own range [0, 1] and its fixed 299 px
    input) against the converter's rebuild (batch norm and the [-1, 1] input range folded,
    float32) on a real photo."""
    from PIL import Image

    inception, fidelity = modules["inception"], modules["fidelity"]
    with Image.open(REPO / "web" / "samples" / "coffee.jpg") as image:
        photo = np.asarray(image.convert("RGB").resize((299, 299), Image.LANCZOS))
    layers = ["mixed3", "mixed5"]
    (photo.astype(np.float32) / 255.0).tofile(tmp_path / "in.bin")
    result = subprocess.run(
        ["node", str(REFERENCE_SCRIPT), str(modules["source"].default_model_dir()),
         str(tmp_path / "in.bin"), str(photo.shape[0]), str(photo.shape[1]), str(tmp_path),
         ",".join(layers)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    shapes = json.loads(result.stdout.strip().splitlines()[-1])["shapes"]
    nsfwjs = [np.fromfile(tmp_path / f"{n}.bin", np.float32).reshape(shapes[n]) for n in layers]

    batch = fidelity.preprocess(photo)  # [-1, 1], as the page feeds every model
    folded = inception.fold(source_weights)
    rebuilt = [np.asarray(t) for t in inception.build(folded, layers)(batch)]
    stored = modules["folding"].rounded(folded, "float16")
    browser = [np.asarray(t) for t in inception.build(stored, layers)(batch)]
    for name, ours, theirs, held in zip(layers, rebuilt, nsfwjs, browser, strict=True):
        assert ours.shape == theirs.shape == (1, 17, 17, 768), name
        assert fidelity.relative_error(ours, theirs) < 1e-5, name
        # What the browser holds (float16 weights) is still the same network.
        assert fidelity.relative_error(held, theirs) < 1e-2, name


# --- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--layers", "mixed3,mixed6"],
     r"unknown layer mixed6; valid layers: activation_1, .*mixed3, .*mixed5$"),
    (["--weights", "/nonexistent/inception_v3"],
     r"/nonexistent/inception_v3/model\.min\.js not found: run `npm ci` "
     r"\(devDependency nsfwjs@4\.4\.0\)$"),
])
def test_bad_input_gives_one_error_line(args, message, tmp_path):
    result = run_export("--model", "inception_v3", *args, "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.match("error: " + message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()
    assert "mixed6" not in lines[0].split("valid layers:")[-1]


def test_nothing_past_mixed5_is_ever_read_and_only_nsfwjs_is_a_source(modules):
    import argparse

    from converter.errors import ExportError

    with pytest.raises(ExportError, match="'mixed6' is past mixed5"):
        modules["source"].weights(until="mixed6")
    assert [i.name for i in modules["inception"].usable_layers()][-1] == "mixed5"
    with pytest.raises(ExportError, match="--source hub is for mobilenet_v2: inception_v3's "
                                          "weights come from the npm package nsfwjs@4.4.0 only"):
        modules["inception"].load_source(argparse.Namespace(source="hub", weights=None))


# --- a native dream -------------------------------------------------------------------------

def test_a_short_native_dream_raises_the_objective_and_changes_the_photo(photo, native_backend):
    from dreamengine import presets, render
    from dreamengine.objective import Objective
    from dreamengine.schedule import Schedule
    from dreamengine.transforms import Transforms
    from native import tf_backend

    ops, manifest = native_backend("inception_v3")
    settings = presets.for_model("inception_v3")["default"]
    assert set(settings["weights"]) == {"mixed3", "mixed5"}
    objective = Objective(settings["weights"])
    objective.check(manifest["outputs"])
    schedule = Schedule(2, settings["octave_scale"], 5, settings["step_size"],
                        manifest["input"]["min_side"])
    losses = []
    image = tf_backend.to_tensor(photo)
    result = tf_backend.finish(render.dream(ops, image, objective, schedule, Transforms(), 0,
                                            on_step=lambda i: losses.append((i.octave, i.loss))))
    for octave in range(2):
        values = [loss for o, loss in losses if o == octave]
        assert len(values) == 5 and values[-1] > values[0], values
    dreamt = tf_backend.to_pixels(result)
    assert dreamt.shape == photo.shape
    assert np.abs(dreamt.astype(float) - photo).mean() > 2

    # Every preset of every model names only layers its export has.
    for model_name, table in presets.PRESETS_BY_MODEL.items():
        outputs = json.loads((REPO / "models" / model_name / "manifest.json").read_text())
        assert sorted(table) == ["deep", "default", "gentle", "wild"]
        for preset in table.values():
            Objective(preset["weights"]).check(outputs["outputs"])


def test_command_line_takes_the_model_and_lists_its_layers(tmp_path, photo):
    from PIL import Image

    source = tmp_path / "cat.png"
    Image.fromarray(photo[:40]).save(source)  # 40 px high: under InceptionV3's 43
    result = subprocess.run(
        [PYTHON, "-m", "native.dream", str(source), str(tmp_path / "out.png"), "--model",
         "inception_v3"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {source} is 227x40; inception_v3 needs at least 43 px on each side")
    Image.fromarray(photo).save(source)
    result = subprocess.run(
        [PYTHON, "-m", "native.dream", str(source), str(tmp_path / "out.png"), "--model",
         "inception_v3", "--layers", "block_12_expand_relu:1"], cwd=REPO,
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1
    assert re.fullmatch(r"error: unknown layer 'block_12_expand_relu'; valid layers: "
                        r".*mixed3.*mixed5.*", result.stderr.strip().splitlines()[-1])


# --- the export (last: it ran in the background) -----------------------------------------------------------------------------

def test_export_reproduces_the_committed_model_byte_for_byte(background_export):
    out, process = background_export
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    names = committed_files(MODEL_DIR)
    assert "manifest.json" in names and "model.json" in names
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        assert (out / name).read_bytes() == (MODEL_DIR / name).read_bytes(), name
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no scratch left
    assert "source has no classification head: top-5 proof skipped" in stdout
    assert "TensorFlow: TF_ENABLE_ONEDNN_OPTS=0 (the converter's own settings)" in stdout
    tfjs = float(re.search(r"same weights: largest relative error ([0-9.e+-]+)",
                           stdout).group(1))
    # ~1e-6 measured on an Intel Xeon (float32 summation order); exactly 0 is a pass too.
    assert 0 <= tfjs <= 1e-4
