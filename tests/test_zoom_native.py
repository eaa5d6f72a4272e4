"""Dream zoom natively: the zoom op against a NumPy reference, the command line's video,
and flat memory over many frames (tfjs's ownership rules, kept by tests/ledger.py)."""

import math
import os
import subprocess

import numpy as np
import pytest
from conftest import PYTHON, REPO
from ledger import Ledger

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def ops(native_backend):
    return native_backend()[0]


def clamp(index, size):
    """Edges clamped: a point outside reads the nearest edge pixel."""
    return np.clip(index, 0, size - 1)


def reference_zoom(x, factor, degrees):
    """Written from the definition: output pixel p reads the input at
    centre + R(-degrees) (p - centre) / factor, bilinearly, edges clamped."""
    h, w = x.shape[:2]
    t = math.radians(degrees)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    sx = cx + (math.cos(t) * dx - math.sin(t) * dy) / factor
    sy = cy + (math.sin(t) * dx + math.cos(t) * dy) / factor
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]

    def at(yi, xi):
        return x[clamp(yi, h), clamp(xi, w)]

    return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
            + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))


@pytest.mark.parametrize("factor,degrees", [(1.05, 0.0), (1.2, 10.0), (0.8, -30.0),
                                            (0.5, 45.0)])
def test_zoom_op_matches_a_numpy_reference(ops, factor, degrees):
    import tensorflow as tf

    x = np.random.default_rng(0).uniform(-1, 1, (37, 53, 3))
    zoomed = np.asarray(ops.zoom(tf.constant(x[None], tf.float32), factor, degrees))[0]
    assert zoomed.shape == x.shape
    assert np.abs(zoomed - reference_zoom(x, factor, degrees)).max() < 1e-4


def test_zoom_op_turns_counter_clockwise_and_keeps_the_centre(ops):
    import tensorflow as tf

    x = np.random.default_rng(1).uniform(-1, 1, (1, 31, 31, 3)).astype(np.float32)
    turned = np.asarray(ops.zoom(tf.constant(x), 1.0, 90.0))[0]
    assert np.abs(turned - np.rot90(x[0])).max() < 1e-5  # rot90: counter-clockwise on screen
    grown = np.asarray(ops.zoom(tf.constant(x), 2.0, 0.0))[0]
    assert np.allclose(grown[15, 15], x[0, 15, 15], atol=1e-6)  # the centre stays put
    assert np.allclose(grown[15, 19], x[0, 15, 17], atol=1e-6)  # 4 px out came from 2 px


def decode(path):
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_the_command_line_writes_a_zoom_video_of_changing_frames(tmp_path):
    from PIL import Image
    from skimage import data

    photo = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()[::4, ::4]).save(photo)  # 113 x 75 -> 112 x 74 in video (even sides)
    out = tmp_path / "zoom.webm"
    run = subprocess.run([PYTHON, "-m", "native.zoom", str(photo), str(out), "--frames", "12",
                          "--steps", "2", "--rotation", "1"], cwd=REPO, capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    frames = decode(out)
    assert len(frames) == 12
    assert all(frame.shape == (74, 112, 3) for frame in frames)
    for before, after in zip(frames[:-1], frames[1:], strict=True):
        assert np.abs(before.astype(float) - after.astype(float)).mean() > 2  # of 255


def test_a_gif_and_the_command_lines_errors(tmp_path, capsys):
    from PIL import Image
    from skimage import data

    from native import zoom

    photo = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()[::5, ::5]).save(photo)
    gif = tmp_path / "zoom.gif"
    assert zoom.main([str(photo), str(gif), "--frames", "3", "--steps", "1"]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 3 and image.size == (91, 60)

    def error(*argv):
        assert zoom.main([*map(str, argv)]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        return lines[0]

    assert "valid layers: " in error(photo, gif, "--layers", "block_99=1")
    assert "block_12_expand_relu" in error(photo, gif, "--layers", "block_99=1")
    assert "zoom must be between" in error(photo, gif, "--zoom", "0")
    assert "frames must be at least 1" in error(photo, gif, "--frames", "0")
    assert "unsupported output format '.avi'" in error(photo, tmp_path / "z.avi")
    assert "cannot read" in error(tmp_path / "missing.png", gif)
    (tmp_path / "text.png").write_text("not an image")
    assert "cannot read" in error(tmp_path / "text.png", gif)
    assert not (tmp_path / "z.avi").exists()


def test_memory_stays_flat_over_many_frames_and_closing_frees_everything(ops):
    from dreamengine import presets
    from dreamengine.objective import Objective
    from dreamengine.transforms import Transforms
    from dreamengine.zoom import dream_zoom, zoom_frames
    from native import tf_backend

    ledger = Ledger(ops)
    image = tf_backend.to_tensor(np.random.default_rng(2).integers(0, 256, (64, 64, 3)))
    objective = Objective(presets.DEFAULT["weights"])
    counts = []
    frames = zoom_frames(ledger, image, objective, 50, 1.05, 2.0, 1, 0.02, Transforms(8))
    for frame in frames:
        counts.append(ledger.live)
        assert frame.image.shape == (1, 64, 64, 3)
    assert counts[0] == 3  # the frame, its loss, the first step's vital signs
    assert counts[1:] == [2] * 49  # the frame and its loss, however many frames
    frames.close()
    assert ledger.live == 0 and ledger.foreign_disposals == 0

    # Cancelled from inside (on_frame says False): stops there, frees everything.
    seen = []
    done = tf_backend.finish(dream_zoom(ledger, image, objective, 10, 1.1, 0.0, 1, 0.02,
                                        Transforms(8), 0, lambda f: seen.append(f.loss) or
                                        len(seen) < 4))
    assert done == 4 and all(isinstance(loss, float) for loss in seen)
    assert ledger.live == 0 and ledger.foreign_disposals == 0


def test_a_zoom_repeats_from_its_seed(ops):
    from dreamengine import presets
    from dreamengine.objective import Objective
    from dreamengine.zoom import zoom_frames
    from native import tf_backend

    image = tf_backend.to_tensor(np.random.default_rng(3).integers(0, 256, (48, 64, 3)))
    objective = Objective(presets.DEFAULT["weights"])

    def last(seed):
        for frame in zoom_frames(ops, image, objective, 3, 1.05, 0.5, 2, 0.02, seed=seed):
            pixels = tf_backend.to_pixels(frame.image)
        return pixels

    assert np.array_equal(last(1), last(1))
    assert not np.array_equal(last(1), last(2))
