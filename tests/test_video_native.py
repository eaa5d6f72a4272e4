"""Dreaming a video natively: the optical flow against motion we made, the coherence the
flow buys (flicker, change, brightness over 200 frames), flat memory, and `native.video` on a
real file, with its audio, and on the files it must refuse."""

import os

import numpy as np
import pytest
from ledger import Ledger

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def ops(native_backend):
    return native_backend()[0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The test video: 48 frames at 24 fps, 320x240, H.264 with an AAC tone."""
    from scripts import sample_video

    return sample_video.write(tmp_path_factory.mktemp("video") / "clip.mp4")


def shifted(pixels, dx, dy):
    """The photo moved by (dx, dy) px (content goes right and down), bilinear, made at twice
    the size and halved so the motion is sub-pixel exact."""
    from PIL import Image

    h, w = pixels.shape[:2]
    big = Image.fromarray(pixels).resize((w * 2, h * 2), Image.LANCZOS)
    moved = big.transform(big.size, Image.AFFINE, (1, 0, -2 * dx, 0, 1, -2 * dy), Image.BILINEAR)
    return np.asarray(moved.resize((w, h), Image.LANCZOS))


@pytest.mark.parametrize("dx, dy", [(1.5, -2.0), (0.4, 0.0), (6.0, 3.5)])
def test_the_flow_finds_a_known_motion(ops, dx, dy):
    """Where the photo moved by (dx, dy), the flow from before to after says (dx, dy), and
    reading `after` along it gives back `before`."""
    from dreamengine.flow import optical_flow
    from native.tf_backend import to_tensor
    from scripts.sample_video import MovingSquare

    before = MovingSquare(240, 160).background
    after = shifted(before, dx, dy)
    a, b = to_tensor(before), to_tensor(after)
    flow = np.asarray(optical_flow(ops, a, b))[0, 20:-20, 20:-20]  # away from the edges
    assert abs(np.median(flow[..., 0]) - dx) < 0.1 and abs(np.median(flow[..., 1]) - dy) < 0.1
    warped = np.asarray(ops.warp(b, optical_flow(ops, a, b)))[0, 20:-20, 20:-20]
    before_core = np.asarray(a)[0, 20:-20, 20:-20]
    after_core = np.asarray(b)[0, 20:-20, 20:-20]
    # Below a pixel, bilinear reading's own blur is most of what is left.
    ratio = 0.3 if max(abs(dx), abs(dy)) >= 1 else 0.7
    assert np.abs(warped - before_core).mean() < ratio * np.abs(after_core - before_core).mean()


def test_warp_reads_each_pixel_at_its_flow(ops):
    """The warp against its definition: bilinear at (col + u, row + v), edges clamped."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 9, 13, 2)).astype(np.float32)
    flow = (rng.normal(size=(1, 9, 13, 2)) * 5).astype(np.float32)
    got = np.asarray(ops.warp(tf.constant(x), tf.constant(flow)))[0]
    yy, xx = np.mgrid[0:9, 0:13].astype(np.float64)
    sx = np.clip(xx + flow[0, ..., 0], 0, 12)
    sy = np.clip(yy + flow[0, ..., 1], 0, 8)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, 12), np.minimum(y0 + 1, 8)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    img = x[0]
    want = ((img[y0, x0] * (1 - fx) + img[y0, x1] * fx) * (1 - fy)
            + (img[y1, x0] * (1 - fx) + img[y1, x1] * fx) * fy)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_flow_makes_a_coherent_dream_that_keeps_its_brightness(ops):
    """bench/video.py's measure, smaller: with the flow, a dreamt frame differs from the
    previous dream read along the motion far less than frames dreamt on their own do
    (flicker) and less than blending without flow, while it changes its source as much as
    a still dream; over 200 frames the mean brightness stays within 2 levels of the
    source's."""
    from bench.video import measure
    from dreamengine import presets
    from dreamengine.plan import plan
    from scripts.sample_video import MovingSquare

    objective, schedule, transforms, seed = plan(dict(presets.DEFAULT, octaves=2))
    video = MovingSquare(64, 48, speed=1.5)
    frames = [video.frame(i) for i in range(200)]
    flow = measure(ops, frames, "flow", objective, schedule, transforms, seed, 32)
    blend = measure(ops, frames[:16], "blend", objective, schedule, transforms, seed)
    still = measure(ops, frames[:8], "still", objective, schedule, transforms, seed)
    assert flow["flicker_255"] < 0.6 * still["flicker_255"], (flow, still)
    assert flow["flicker_255"] < 0.9 * blend["flicker_255"], (flow, blend)
    assert flow["change_255"] > 0.8 * still["change_255"], (flow, still)
    assert flow["drift_max_255"] < 2.0, flow["drift_255"]


def test_memory_stays_flat_over_many_frames_and_close_frees_everything(ops):
    from dreamengine.objective import Objective
    from dreamengine.schedule import Schedule
    from dreamengine.transforms import Transforms
    from dreamengine.video import VideoDreamer
    from native.tf_backend import finish, to_tensor
    from scripts.sample_video import MovingSquare

    ledger = Ledger(ops)
    video = MovingSquare(64, 48)
    dreamer = VideoDreamer(ledger, Objective({"block_5_expand_relu": 1.0}),
                           Schedule(octaves=1, steps=1), steps=1, transforms=Transforms(4))
    counts = []
    for index in range(30):
        frame = to_tensor(video.frame(index))
        ledger.alive[id(frame)] = frame  # the caller's, freed by the caller
        finish(dreamer.dream(frame))
        ledger.dispose(frame)
        counts.append(ledger.live)
    assert counts[5:] == [counts[5]] * 25  # the previous frame and its dream, nothing more
    dreamer.close()
    assert ledger.live == 0 and ledger.foreign_disposals == 0


def streams(path):
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        audio = container.streams.audio
        return {"frames": frames, "size": (video.codec_context.width, video.codec_context.height),
                "fps": float(video.average_rate), "audio": audio[0].codec_context.name
                if audio else None, "seconds": float(container.duration / 1e6)}


def test_the_command_line_dreams_every_frame_and_keeps_rate_size_and_audio(clip, tmp_path,
                                                                        capsys):
    from native import video

    source = streams(clip)
    out = tmp_path / "dream.mp4"
    assert video.main([str(clip), str(out), "--max-side", "96"]) == 0
    made = streams(out)
    assert made["frames"] == source["frames"] == 48
    assert made["size"] == (96, 72) and made["fps"] == source["fps"] == 24
    assert made["audio"] == "aac" and abs(made["seconds"] - source["seconds"]) < 0.1
    assert "48 frames, 96x72, 24 fps, audio aac" in capsys.readouterr().out
    import av

    with av.open(str(clip)) as a, av.open(str(out)) as b:
        first = next(a.decode(video=0)).reformat(96, 72, "rgb24").to_ndarray()
        dreamt = next(b.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(first.astype(float) - dreamt).mean() > 6  # it dreamt


def test_a_frame_range_without_flow_into_webm(clip, tmp_path):
    from native import video

    out = tmp_path / "part.webm"
    assert video.main([str(clip), str(out), "--max-side", "96", "--frames", "12:24",
                       "--no-flow", "--steps", "1"]) == 0
    made = streams(out)
    assert made["frames"] == 12 and made["audio"] == "opus"  # AAC does not go into WebM
    assert abs(made["seconds"] - 0.5) < 0.1


def test_bad_files_and_settings_get_one_sentence(clip, tmp_path, capsys):
    from native import video
    from scripts import sample_video

    photo = tmp_path / "photo.mp4"
    photo.write_bytes(sample_video.PHOTO.read_bytes())
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).bytes(5000))
    sound = sample_video.write(tmp_path / "sound.m4a", video=None)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:int(clip.stat().st_size * 0.6)])
    cases = [([str(photo)], "is a still image (jpeg), not a video"),
             ([str(noise)], "cannot read " + str(noise) + " as a video"),
             ([str(sound)], "has no video track (audio only)"),
             ([str(clip), "--frames", "100:"], "has no frames to dream in 100:"),
             ([str(clip), "--frames", "9"], "bad frame range '9'"),
             ([str(clip), "--blend", "1.5"], "blend must be at least 0 and below 1"),
             ([str(clip), "--layers", "nope:1"], "nope")]
    for args, sentence in cases:
        assert video.main([*args, str(tmp_path / "out.mp4"), "--max-side", "64"]) == 1, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and sentence in err and err.count("\n") == 1, (args, err)
    assert video.main([str(cut), str(tmp_path / "cut-dream.mp4"), "--max-side", "64",
                       "--steps", "1"]) == 0
    said = capsys.readouterr().out
    made = streams(tmp_path / "cut-dream.mp4")
    assert 0 < made["frames"] < 48 and f"was cut short; dreamt the {made['frames']}" in said
