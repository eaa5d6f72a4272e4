"""The native command lines' options do what docs/engine.md says, run as a user runs them.

`python -m native.dream` and `python -m native.zoom` in subprocesses; each output is
compared with what the engine itself makes in this process from the settings the option
stands for (`--preset deep` is the deep preset's layers, `--max-side 96` is the photo scaled
to 96 px first, ...), and with what it makes without the option, so a test fails when an
option is ignored or means something else. Tiny photos, one octave, a few steps: each run
costs mostly TensorFlow's start-up, so one run checks several options.
"""

import os
import subprocess

import numpy as np
import pytest
from conftest import PYTHON, REPO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SIDE = 96  # the --max-side of every run; the photo is larger (128 px)
QUICK = ["--octaves", "1", "--max-side", str(SIDE)]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """chelsea at 128 px and coffee at 96 px as PNG files (lossless: the command reads
    exactly these pixels), and chelsea as the engine sees it after --max-side 96."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("cli")
    cat = Image.fromarray(data.chelsea())
    cat.thumbnail((128, 128), Image.LANCZOS)
    cat.save(folder / "cat.png")
    coffee = Image.fromarray(data.coffee())
    coffee.thumbnail((SIDE, SIDE), Image.LANCZOS)
    coffee.save(folder / "coffee.png")
    assert max(cat.size) > SIDE
    small = cat.copy()
    small.thumbnail((SIDE, SIDE), Image.LANCZOS)
    return {"folder": folder, "cat": folder / "cat.png", "coffee": folder / "coffee.png",
            "small": np.asarray(small), "coffee_pixels": np.asarray(coffee)}


@pytest.fixture(scope="module")
def mobilenet(native_backend):
    """The engine's backend and manifest for MobileNetV2, shared by the module's tests."""
    return native_backend("mobilenet_v2")


def command(module, *args):
    """Run `python -m native.<module> ARGS` from the repository; it must succeed."""
    result = subprocess.run([PYTHON, "-m", f"native.{module}", *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result


def engine_dream(ops, manifest, pixels, settings, steps, channel=None):
    """What the engine dreams from `pixels` with a preset's `settings` in one octave of
    `steps` steps, as QUICK runs it."""
    from dreamengine import render
    from dreamengine.objective import Objective
    from dreamengine.schedule import Schedule
    from dreamengine.transforms import TILE_SIZE, Transforms
    from native import tf_backend

    objective = Objective(settings["weights"], settings["norm"], channel)
    objective.check(manifest["outputs"])
    schedule = Schedule(1, settings["octave_scale"], steps, settings["step_size"],
                        manifest["input"]["min_side"])
    result = render.dream(ops, tf_backend.to_tensor(pixels), objective, schedule,
                          Transforms(settings["jitter"], TILE_SIZE), 0)
    return tf_backend.to_pixels(tf_backend.finish(result))


def difference(a, b):
    """Mean absolute difference, 0-255."""
    assert a.shape == b.shape
    return np.abs(a.astype(float) - b.astype(float)).mean()


def read_png(path):
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_dream_preset_channel_and_max_side(photos, mobilenet):
    """--preset deep --channel block_15_expand_relu:7 --max-side 96: the deep preset's
    layers (block_15 is in no other preset) with one channel of block_15, dreamt on the
    photo scaled to 96 px."""
    from dreamengine import presets

    out = photos["folder"] / "deep-channel.png"
    channel = ("block_15_expand_relu", 7)
    command("dream", photos["cat"], out, *QUICK, "--steps", 2, "--step-size", 0.05,
            "--preset", "deep", "--channel", f"{channel[0]}:{channel[1]}")
    dreamt = read_png(out)
    assert dreamt.shape[:2] == photos["small"].shape[:2] == (64, SIDE)  # longer side 96

    ops, manifest = mobilenet
    table = presets.for_model("mobilenet_v2")

    def engine(preset, channel=None):
        return engine_dream(ops, manifest, photos["small"],
                            dict(table[preset], step_size=0.05), 2, channel)

    asked = difference(dreamt, engine("deep", channel))
    assert asked < 0.5, asked  # measured 0: the same computation
    # Without the channel, or with the default preset, the dream is another one.
    assert difference(dreamt, engine("deep")) > asked + 2
    assert difference(dreamt, engine("default")) > asked + 2
    assert difference(dreamt, photos["small"]) > 2  # it did dream


def test_dream_with_inception_v3_takes_that_models_preset(photos, native_backend):
    """--model inception_v3 --preset wild: InceptionV3's own wild preset (its layers and its
    step size), the octave and step counts given on the command line overriding it."""
    from dreamengine import presets

    out = photos["folder"] / "inception-wild.png"
    result = command("dream", photos["cat"], out, *QUICK, "--steps", 4, "--model",
                     "inception_v3", "--preset", "wild")
    assert "inception_v3" in result.stdout.splitlines()[-1]
    assert "octave 1/1" in result.stdout
    dreamt = read_png(out)
    assert dreamt.shape[:2] == (64, SIDE)

    ops, manifest = native_backend("inception_v3")
    table = presets.for_model("inception_v3")
    assert table["wild"]["step_size"] != table["default"]["step_size"]
    asked = difference(dreamt, engine_dream(ops, manifest, photos["small"], table["wild"], 4))
    assert asked < 0.5, asked  # measured 0
    default = engine_dream(ops, manifest, photos["small"], table["default"], 4)
    assert difference(dreamt, default) > asked + 2
    assert difference(dreamt, photos["small"]) > 2


def decode(path):
    """The video stream of `path`: its container, codec and rate, and its frames in order
    with their times in seconds."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {"format": container.format.name, "codec": stream.codec_context.name,
                "rate": stream.average_rate}
        frames = [(frame.time, frame.to_ndarray(format="rgb24"))
                  for frame in container.decode(stream)]
    return info, frames


def test_zoom_writes_an_mp4_at_its_fps_and_max_side_guided_by_its_guide(photos, mobilenet):
    """native.zoom ... zoom.mp4 --fps 7 --max-side 96 --guide coffee.png: an H.264 MP4 of
    the asked frames, 7 a second, 96 px on its longer side, whose frames are the guided
    zoom's.

    H.264 is lossy (about 7/255 here, much the same for any of these zooms), and its output
    here need not repeat byte for byte from run to run though the frames do (the same zoom
    as a GIF does): re-encoding the engine's frames to compare them gave up to 3/255 apart.
    So the video is compared with the engine's frames themselves, and the guided and plain
    zooms are made far apart (step size 0.05): the video must be clearly nearer the guided
    one."""
    from dreamengine import presets
    from dreamengine.guide import GuideObjective
    from dreamengine.objective import Objective
    from dreamengine.transforms import TILE_SIZE, Transforms
    from dreamengine.zoom import dream_zoom
    from native import tf_backend

    out = photos["folder"] / "zoom.mp4"
    frames, steps, step_size, fps = 3, 2, 0.05, 7
    assert fps != presets.ZOOM["fps"]
    command("zoom", photos["cat"], out, "--frames", frames, "--steps", steps, "--step-size",
            step_size, "--fps", fps, "--max-side", SIDE, "--guide", photos["coffee"])
    info, video = decode(out)
    assert "mp4" in info["format"].split(",") and info["codec"] == "h264"
    assert info["rate"] == fps
    assert [time for time, _ in video] == pytest.approx([i / fps for i in range(frames)])
    assert all(pixels.shape == (64, SIDE, 3) for _, pixels in video)

    ops, manifest = mobilenet
    plain = Objective(presets.ZOOM["weights"], presets.ZOOM["norm"])
    guided = GuideObjective(presets.GUIDE["layers"], presets.GUIDE["mix"], plain,
                            presets.GUIDE["max_vectors"])
    guided.check(manifest["outputs"])
    guided.set_guide(ops, tf_backend.to_tensor(photos["coffee_pixels"]))

    def engine(objective):
        """The engine's frames of the zoom of the scaled photo."""
        made = []
        tf_backend.finish(dream_zoom(
            ops, tf_backend.to_tensor(photos["small"]), objective, frames,
            presets.ZOOM["zoom"], presets.ZOOM["rotation"], steps, step_size,
            Transforms(presets.ZOOM["jitter"], TILE_SIZE), 0,
            on_frame=lambda frame: made.append(tf_backend.to_pixels(frame.image))))
        return made

    def distance(made):
        return np.mean([difference(p, q) for (_, p), q in zip(video, made, strict=True)])

    near, far = distance(engine(guided)), distance(engine(plain))
    assert far > near + 2, (near, far)  # measured 6.6 against 10.5


def test_zoom_takes_the_model_and_its_layers(photos, native_backend):
    """native.zoom --model inception_v3 --layers mixed3:1: InceptionV3 zooms on its own layer
    (a layer MobileNetV2 does not have), and the frames are the engine's InceptionV3 zoom
    of that layer, not its default layers'; MobileNetV2's block_8_expand_relu:1 given to
    InceptionV3 is one clear line naming its valid layers, with nothing of TensorFlow's
    start-up on stderr."""
    from PIL import Image

    from dreamengine import presets
    from dreamengine.objective import Objective
    from dreamengine.transforms import TILE_SIZE, Transforms
    from dreamengine.zoom import dream_zoom
    from native import tf_backend

    out = photos["folder"] / "inception-zoom.gif"
    frames, steps, step_size = 2, 2, 0.05
    result = command("zoom", photos["cat"], out, "--model", "inception_v3", "--layers",
                     "mixed3:1", "--frames", frames, "--steps", steps, "--step-size",
                     step_size, "--max-side", SIDE)
    assert result.stdout.splitlines()[-1].endswith("inception_v3)")
    with Image.open(out) as gif:
        video = []
        for index in range(gif.n_frames):
            gif.seek(index)
            video.append(np.asarray(gif.convert("RGB")))
    assert len(video) == frames and video[0].shape == (64, SIDE, 3)

    ops, manifest = native_backend("inception_v3")

    def engine(weights):
        made = []
        objective = Objective(weights, "mean")
        objective.check(manifest["outputs"])
        tf_backend.finish(dream_zoom(
            ops, tf_backend.to_tensor(photos["small"]), objective, frames,
            presets.ZOOM["zoom"], presets.ZOOM["rotation"], steps, step_size,
            Transforms(presets.ZOOM["jitter"], TILE_SIZE), 0,
            on_frame=lambda frame: made.append(tf_backend.to_pixels(frame.image))))
        return np.mean([difference(p, q) for p, q in zip(video, made, strict=True)])

    default = presets.for_model("inception_v3")["default"]["weights"]
    assert default != {"mixed3": 1.0}
    near, far = engine({"mixed3": 1.0}), engine(default)
    assert far > near + 1, (near, far)  # the GIF's palette costs about a unit of 255

    refused = subprocess.run(
        [PYTHON, "-m", "native.zoom", str(photos["cat"]), str(out), "--model", "inception_v3",
         "--layers", "block_8_expand_relu:1"], cwd=REPO, capture_output=True, text=True,
        timeout=300, check=False)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("error: unknown layer 'block_8_expand_relu'; valid layers: ")
    assert "mixed3" in lines[0]
