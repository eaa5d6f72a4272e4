"""The dream engine over native TensorFlow: it dreams, repeats from a seed, tiles faithfully."""

import os
import subprocess

import numpy as np
import pytest
from conftest import PYTHON, REPO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def engine(native_backend):
    from dreamengine import presets, render
    from dreamengine.objective import Objective
    from dreamengine.schedule import Schedule
    from dreamengine.transforms import Transforms
    from native import tf_backend

    ops, manifest = native_backend()
    return {"ops": ops, "tf_backend": tf_backend, "render": render, "presets": presets,
            "Objective": Objective, "Schedule": Schedule, "Transforms": Transforms,
            "manifest": manifest}


@pytest.fixture(scope="module")
def chelsea():
    from skimage import data

    return data.chelsea()


def run(engine, pixels, seed=0, **schedule):
    losses = []
    e = engine
    image = e["tf_backend"].to_tensor(pixels)
    result = e["tf_backend"].finish(e["render"].dream(
        e["ops"], image, e["Objective"](e["presets"].DEFAULT["weights"]),
        e["Schedule"](**schedule), e["Transforms"](), seed,
        on_step=lambda info: losses.append((info.octave, info.loss))))
    return e["tf_backend"].to_pixels(result), losses


def test_default_dream_raises_the_objective_and_visibly_changes_the_photo(engine, chelsea):
    dreamt, losses = run(engine, chelsea)
    assert len(losses) == 4 * 10
    for octave in range(4):
        values = [loss for o, loss in losses if o == octave]
        rises = np.diff(values)
        assert rises.mean() > 0, f"octave {octave}: {values}"
    # 5/255 is well above what re-encoding or rounding moves (<= 2/255) and well below what
    # the default dream does to a real photo (about 13/255 measured, docs/engine.md).
    change = np.abs(dreamt.astype(float) - chelsea.astype(float)).mean()
    assert change > 5


def test_a_seed_repeats_a_run_and_another_seed_does_not(engine, chelsea):
    small = chelsea[::2, ::2]
    a, _ = run(engine, small, seed=5, octaves=2, steps=3)
    b, _ = run(engine, small, seed=5, octaves=2, steps=3)
    c, _ = run(engine, small, seed=6, octaves=2, steps=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_tiled_and_untiled_gradients_agree(engine):
    from skimage import data

    e = engine
    image = e["tf_backend"].to_tensor(data.astronaut()[:384, :384])
    objective = e["Objective"](e["presets"].DEFAULT["weights"])
    loss_whole, whole = e["render"].tiled_gradient(e["ops"], image, objective,
                                                    e["Transforms"](0, 512))
    loss_tiled, tiled = e["render"].tiled_gradient(e["ops"], image, objective,
                                                    e["Transforms"](0, 192))
    a, b = np.asarray(whole).ravel(), np.asarray(tiled).ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) >= 0.995
    loss_whole, loss_tiled = float(loss_whole), float(loss_tiled)
    assert abs(loss_whole - loss_tiled) / abs(loss_whole) < 0.02


def test_octaves_run_small_to_full_size_and_skip_too_small_ones(engine):
    schedule = engine["Schedule"](octaves=4, octave_scale=2.0)
    assert schedule.octave_sizes(400, 600) == [(50, 75), (100, 150), (200, 300), (400, 600)]
    assert schedule.octave_sizes(80, 100) == [(40, 50), (80, 100)]
    transforms = engine["Transforms"](tile_size=512)
    assert transforms.tiles(1536) == [(0, 512), (512, 1024), (1024, 1536)]
    assert transforms.tiles(1100) == [(0, 367), (367, 733), (733, 1100)]


def test_bad_objectives_list_the_valid_choices(engine):
    outputs = engine["manifest"]["outputs"]
    with pytest.raises(ValueError, match="unknown layer 'nope'; valid layers: block_2"):
        engine["Objective"]({"nope": 1.0}).check(outputs)
    with pytest.raises(ValueError, match="valid channels: 0-191"):
        engine["Objective"]({"block_5_expand_relu": 1.0},
                            channel=("block_5_expand_relu", 500)).check(outputs)
    with pytest.raises(ValueError, match="unknown norm 'max'; valid norms: mean, l2"):
        engine["Objective"]({"block_5_expand_relu": 1.0}, norm="max")


def test_command_line_dreams_a_file_into_a_file(tmp_path, chelsea):
    from PIL import Image

    source, target = tmp_path / "cat.jpg", tmp_path / "dream.png"
    Image.fromarray(chelsea).save(source, quality=95)
    result = subprocess.run(
        [PYTHON, "-m", "native.dream", str(source), str(target), "--octaves", "2", "--steps",
         "2", "--layers", "block_12_expand_relu:1,block_5_expand_relu:0.5", "--seed", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "octave 2/2" in result.stdout
    with Image.open(target) as dreamt:
        assert dreamt.size == (chelsea.shape[1], chelsea.shape[0])
        assert np.abs(np.asarray(dreamt, dtype=float) - chelsea).mean() > 2

    for option, value, message in (
            ("--layers", "nope:1", "error: unknown layer 'nope'; valid layers: block_2"),
            ("--layers", "block_5_expand_relu:lots", "error: bad weight 'lots' for layer"),
            ("--channel", "block_5_expand_relu:seven", "error: bad channel")):
        bad = subprocess.run([PYTHON, "-m", "native.dream", str(source), str(target), option,
                              value], cwd=REPO, capture_output=True, text=True, timeout=300,
                             check=False)
        assert bad.returncode == 1
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), bad.stderr
