"""Reading and writing videos in the page (web/js/media.js, issue 21: dream a video).

Every video here is made by the test with PyAV (FFmpeg): two seconds at 24 fps, 320x240, a
textured square moving over the coffee sample, with a tone as its sound (AAC, as phones
record it). The page opens them with `openVideo` (the size, rate, length and sound it
reports, every frame), writes them again with `createVideoWriter` (PyAV decodes what it
wrote: frames, size, rate, sound), and refuses the files it cannot dream with one sentence
each, carrying on afterwards. One page serves the whole file; the files travel into it as
base64, so it requests nothing but the site.
"""

import base64
import io
from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import REPO, open_page
from PIL import Image

FPS = 24
FRAMES = 48
WIDTH, HEIGHT = 320, 240
SIDE = 48  # the moving square's side; it moves 5 px a frame


def picture(index: int) -> np.ndarray:
    """Frame `index` of the test clip, as RGB."""
    photo = Image.open(REPO / "web/samples/coffee.jpg").convert("RGB").resize((WIDTH, HEIGHT))
    frame = np.asarray(photo).copy()
    texture = np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    x = 10 + 5 * index
    frame[96:96 + SIDE, x:x + SIDE] = texture
    return frame


def write_clip(path, video="libx264", audio="aac", rotation=None, frames=FRAMES,
               options=None, container_options=None) -> None:
    """The test clip into `path`: `video` and `audio` are FFmpeg encoders (None: no such
    track); `rotation` is written as the track's display rotation (counter-clockwise, as
    FFmpeg counts)."""
    with av.open(str(path), "w", options=container_options or {}) as out:
        streams = []
        if video:
            v = out.add_stream(video, rate=FPS, options=options or {})
            v.width, v.height, v.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            if rotation is not None:
                v.set_display_rotation(rotation)
            streams.append(v)
        if audio:
            a = out.add_stream(audio, rate=48000)
            a.layout = "stereo"
            streams.append(a)
        out.start_encoding()
        if video:
            for index in range(frames):
                frame = av.VideoFrame.from_ndarray(picture(index), format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, FPS)
                out.mux(v.encode(frame))
            out.mux(v.encode())
        if audio and frames:
            count = 48000 * frames // FPS
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(count) / 48000)).astype(np.float32)
            size = a.codec_context.frame_size or 1024
            for start in range(0, count, size):
                chunk = np.ascontiguousarray(np.stack([tone, tone])[:, start:start + size])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
                out.mux(a.encode(frame))
            out.mux(a.encode())


def first_part(source, target, fraction: float = 0.6) -> None:
    """The first `fraction` of `source`'s bytes: a download or a copy cut short."""
    data = source.read_bytes()
    target.write_bytes(data[:int(len(data) * fraction)])


def can_encode(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
        return True
    except av.codec.codec.UnknownCodecError:
        return False


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """Every test video, by name (a path)."""
    folder = tmp_path_factory.mktemp("clips")
    made = {name: folder / name for name in (
        "clip.mp4", "rotated.mp4", "sound.m4a", "picture.mp4", "cut-index.mp4", "fast.mp4",
        "cut.mp4", "clusters.webm", "cut.webm", "one-cluster.webm", "cut-early.webm",
        "empty.webm")}
    write_clip(made["clip.mp4"])
    write_clip(made["rotated.mp4"], rotation=90)
    write_clip(made["sound.m4a"], video=None)
    Image.fromarray(picture(0)).save(made["picture.mp4"], format="PNG")  # renamed, not a video
    # FFmpeg writes an MP4's index (moov) last, as most cameras do: cut short, none is left.
    first_part(made["clip.mp4"], made["cut-index.mp4"])
    # With the index first ("fast start", as for the web), the frames before the cut remain.
    write_clip(made["fast.mp4"], container_options={"movflags": "faststart"})
    first_part(made["fast.mp4"], made["cut.mp4"])
    vp9 = {"deadline": "realtime", "cpu-used": "8"}
    # A WebM's frames come in clusters (here a quarter second each): whole ones survive a cut.
    write_clip(made["clusters.webm"], "libvpx-vp9", "libopus", options=vp9,
               container_options={"cluster_time_limit": "250"})
    first_part(made["clusters.webm"], made["cut.webm"])
    write_clip(made["one-cluster.webm"], "libvpx-vp9", "libopus", options=vp9)
    first_part(made["one-cluster.webm"], made["cut-early.webm"])
    write_clip(made["empty.webm"], "libvpx-vp9", None, frames=0, options=vp9)
    if can_encode("libx265"):  # an iPhone's codec, which this Chromium does not decode
        made["hevc.mp4"] = folder / "hevc.mp4"
        write_clip(made["hevc.mp4"], "libx265", options={"x265-params": "log-level=error"})
    return made


# The page's side: files arrive as base64; `open` reports what openVideo says and reads every
# frame (the pixels of those asked for), `rewrite` writes a file again with createVideoWriter.
HELPERS = """() => {
  const blob = (b64) => new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]);
  const b64 = async (data) => {
    const bytes = new Uint8Array(await data.arrayBuffer());
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  const pixels = (canvas) => {
    const copy = new OffscreenCanvas(canvas.width, canvas.height);
    const context = copy.getContext('2d');
    context.drawImage(canvas, 0, 0);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    return b64(new Blob([data]));
  };
  const fields = (video) => Object.fromEntries(Object.entries(video)
    .filter(([, value]) => typeof value !== 'function' && typeof value !== 'object'));
  window.mediaTest = {
    async open(data, { maxSide = 720, keep = [], frames = true } = {}) {
      const media = await window.dreamframe.loadMedia();
      let video;
      try {
        video = await media.openVideo(blob(data), { maxSide });
      } catch (error) {
        return { error: error.message, type: error.constructor.name };
      }
      const out = { ...fields(video), frames: [], kept: {} };
      if (frames) {
        for await (const { canvas, timestamp, duration, index } of video.frames()) {
          out.frames.push({ index, timestamp, duration, width: canvas.width, height: canvas.height });
          if (keep.includes(index)) out.kept[index] = await pixels(canvas);
        }
        out.after = fields(video);
      }
      video.close();
      return out;
    },
    async rewrite(data, { prefer = 'mp4', maxSide = 720, limit = Infinity, cancel = false } = {}) {
      const media = await window.dreamframe.loadMedia();
      const video = await media.openVideo(blob(data), { maxSide });
      const writer = await media.createVideoWriter({ width: video.width, height: video.height,
                                                     fps: video.fps, audioFrom: video, prefer });
      for await (const { canvas, timestamp, duration, index } of video.frames()) {
        if (index === limit) break;
        await writer.add(canvas, timestamp, duration);
      }
      if (cancel) {
        await writer.cancel();
        video.close();
        return { cancelled: writer.frames };
      }
      const made = await writer.finish();
      video.close();
      const { kind, type, extension, why, audio, frames } = writer;
      return { kind, type, extension, why, audio, frames, blobType: made.type, file: await b64(made) };
    },
  };
}"""


@pytest.fixture(scope="module")
def media(browser, site_url):
    """One page for the whole file, its media module loaded through the page's own hook."""
    with open_page(browser) as page:
        page.goto(site_url + "index.html?backend=wasm")
        page.wait_for_function("() => window.dreamframe && window.dreamframe.loadMedia",
                               timeout=120_000)
        page.evaluate(HELPERS)
        yield page


def encoded(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def opened(page, path, **options) -> dict:
    return page.evaluate("([data, options]) => window.mediaTest.open(data, options)",
                         [encoded(path), options])


def rgb(b64: str, width: int, height: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(height, width, 4)[..., :3]


def decoded(path) -> list:
    """The frames PyAV decodes, as RGB, with the rotation FFmpeg reads for them."""
    with av.open(str(path)) as container:
        return [(f.to_ndarray(format="rgb24"), f.rotation) for f in container.decode(video=0)]


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


def square(frame: np.ndarray, index: int) -> np.ndarray:
    """Where the moving square is in frame `index` (the rest of the picture stands still)."""
    x = 10 + 5 * index
    return frame[96:96 + SIDE, x:x + SIDE]


# Chromium and FFmpeg turn the same decoded YUV into slightly different RGB (their colour
# conversions differ): a few units of 255 apart over a whole frame, the same frame or not.
NEAR = 8


def nearest(frame: np.ndarray, index: int, reference: list) -> int:
    """Which of reference frames index-1, index, index+1 has the square where `frame` has it
    (the same frame, for a video in order)."""
    here = square(frame, index)
    candidates = [j for j in (index - 1, index, index + 1) if 0 <= j < len(reference)]
    return min(candidates, key=lambda j: difference(here, square(reference[j], index)))


def test_open_video_reports_the_clip_and_yields_every_frame(media, clips):
    got = opened(media, clips["clip.mp4"], keep=[0, 47])
    assert {k: got[k] for k in ("width", "height", "sourceWidth", "sourceHeight", "rotation",
                                "fps", "frameCount", "hasAudio", "codec", "truncated")} == {
        "width": 320, "height": 240, "sourceWidth": 320, "sourceHeight": 240, "rotation": 0,
        "fps": 24, "frameCount": 48, "hasAudio": True, "codec": "H.264 (avc1)",
        "truncated": False}
    assert got["duration"] == pytest.approx(2.0)
    frames = got["frames"]
    assert [f["index"] for f in frames] == list(range(FRAMES))
    assert [f["timestamp"] for f in frames] == pytest.approx([i / FPS for i in range(FRAMES)])
    assert {(f["width"], f["height"]) for f in frames} == {(320, 240)}
    assert got["after"]["truncated"] is False and got["after"]["frameCount"] == FRAMES
    # The frames are the clip's, in order: each as FFmpeg decodes it, the moving square where
    # it is in that frame and not where it is a frame later or earlier.
    reference = [f for f, _ in decoded(clips["clip.mp4"])]
    for index in (0, 47):
        frame = rgb(got["kept"][str(index)], 320, 240)
        assert difference(frame, reference[index]) < NEAR
        assert nearest(frame, index, reference) == index

    small = opened(media, clips["clip.mp4"], maxSide=150, frames=False)
    assert (small["width"], small["height"]) == (150, 112)  # 112.5 rounded, then even
    assert (small["sourceWidth"], small["sourceHeight"]) == (320, 240)


def test_a_rotated_video_comes_out_upright(media, clips):
    """A phone held upright records landscape frames and a rotation: the frames come out
    portrait, turned the way the file says (and the written video is upright, unrotated)."""
    got = opened(media, clips["rotated.mp4"], keep=[0])
    # FFmpeg's 90 is counter-clockwise; mediabunny counts clockwise.
    assert (got["rotation"], got["width"], got["height"]) == (270, 240, 320)
    assert (got["sourceWidth"], got["sourceHeight"]) == (240, 320)
    assert {(f["width"], f["height"]) for f in got["frames"]} == {(240, 320)}
    frame = rgb(got["kept"]["0"], 240, 320)
    stored, rotation = decoded(clips["rotated.mp4"])[0]
    assert rotation == 90 and stored.shape == (240, 320, 3)
    upright = np.rot90(stored, k=1)  # a quarter turn counter-clockwise
    assert difference(frame, upright) < NEAR
    assert 3 * difference(frame, upright) < difference(frame, np.rot90(stored, k=-1))

    written = media.evaluate("(data) => window.mediaTest.rewrite(data)",
                             encoded(clips["rotated.mp4"]))
    path = clips["clip.mp4"].parent / "rotated-written.mp4"
    path.write_bytes(base64.b64decode(written["file"]))
    again = decoded(path)
    assert len(again) == FRAMES and again[0][1] == 0 and again[0][0].shape == (320, 240, 3)
    assert difference(again[0][0], upright) < NEAR


def test_a_written_video_keeps_the_frames_rate_size_and_sound(media, clips, site_url):
    """An MP4 (this Chromium encodes H.264) with the source's AAC copied, packet for packet;
    the page asked nothing of another origin for it (mediabunny's workers are blob: URLs)."""
    got = media.evaluate("(data) => window.mediaTest.rewrite(data)", encoded(clips["clip.mp4"]))
    assert (got["kind"], got["type"], got["extension"], got["why"]) == (
        "mp4", "video/mp4", "mp4", None)
    assert got["blobType"] == "video/mp4" and got["frames"] == FRAMES
    assert got["audio"] == {"codec": "aac", "copied": True}
    raw = base64.b64decode(got["file"])
    with av.open(io.BytesIO(raw)) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 320, 240)
        assert video.average_rate == FPS and sound.codec_context.name == "aac"
        assert container.duration / 1e6 == pytest.approx(2.0, abs=0.05)
    with av.open(io.BytesIO(raw)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(io.BytesIO(raw)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    source = [f for f, _ in decoded(clips["clip.mp4"])]
    assert len(frames) == FRAMES  # each the source's frame, the square where it was then
    for index, (made, original) in enumerate(zip(frames, source, strict=True)):
        assert difference(made, original) < NEAR, index
    assert [nearest(made, index, source) for index, made in enumerate(frames)] == list(
        range(FRAMES))
    assert samples / 48000 == pytest.approx(2.0, abs=0.05)  # the tone, its whole length
    assert site_url + "vendor/video/mediabunny.min.mjs" in media.requests
    assert all(url.startswith((site_url, "data:", "blob:")) for url in media.requests)


def test_other_formats_carry_the_sound_or_say_why_not(media, clips):
    """WebM cannot hold AAC: the sound is decoded and encoded again as Opus (this Chromium
    encodes no AAC). A writer stopped early ends the sound with its last frame. A GIF has no
    sound, and says why it was made."""
    got = media.evaluate("(data) => window.mediaTest.rewrite(data, { prefer: 'webm', limit: 12 })",
                         encoded(clips["clip.mp4"]))
    assert (got["kind"], got["type"], got["why"], got["frames"]) == ("webm", "video/webm", None, 12)
    assert got["audio"] == {"codec": "opus", "copied": False, "from": "aac"}
    raw = base64.b64decode(got["file"])
    assert raw[:4] == b"\x1a\x45\xdf\xa3"
    with av.open(io.BytesIO(raw)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.name, video.width, video.height) == ("vp9", 320, 240)
        assert video.average_rate == FPS
        assert container.streams.audio[0].codec_context.name == "opus"
    with av.open(io.BytesIO(raw)) as container:
        assert len(list(container.decode(video=0))) == 12
    with av.open(io.BytesIO(raw)) as container:
        sound = sum(f.samples for f in container.decode(audio=0)) / 48000
    assert sound == pytest.approx(12 / FPS, abs=0.05)  # half a second, not the whole tone
    # A writer given up half-way cancels cleanly: no error, nothing logged.
    assert media.evaluate("(data) => window.mediaTest.rewrite(data, "
                          "{ prefer: 'webm', limit: 5, cancel: true })",
                          encoded(clips["clip.mp4"])) == {"cancelled": 5}

    gif = media.evaluate("(data) => window.mediaTest.rewrite(data, "
                         "{ prefer: 'gif', maxSide: 80, limit: 6 })", encoded(clips["clip.mp4"]))
    assert (gif["kind"], gif["type"], gif["why"], gif["audio"], gif["frames"]) == (
        "gif", "image/gif", "asked for a GIF", None, 6)
    with Image.open(io.BytesIO(base64.b64decode(gif["file"]))) as image:
        assert (image.n_frames, image.size) == (6, (80, 60))
        assert image.info["duration"] == 40  # 1/24 s in a GIF's hundredths of a second


BAD = {
    "picture.mp4": "This file is not a video this page can read.",
    "sound.m4a": "This file has no video track, only sound.",
    "hevc.mp4": "This browser cannot decode this video's codec, HEVC (hev1).",
    "cut-index.mp4": "This file has no track that can be read: it may be empty or cut short.",
    "cut-early.webm": "This video was cut short before its first frame.",
    "empty.webm": "This video has no frames.",
}


@pytest.mark.parametrize("name", BAD)
def test_a_file_that_cannot_be_dreamt_gets_one_sentence(media, clips, name):
    """A PNG renamed .mp4, sound only, HEVC (which this Chromium cannot decode), an MP4 cut
    before its index, a WebM cut inside its only cluster, a video track without frames:
    each rejects with its sentence for the visitor, and the page reads the next file."""
    if name not in clips:
        pytest.skip("this PyAV has no HEVC encoder (libx265) to make the file with")
    got = opened(media, clips[name])
    assert got == {"error": BAD[name], "type": "Error"}
    assert opened(media, clips["clip.mp4"], frames=False)["frameCount"] == FRAMES
    assert media.console_errors == []


@pytest.mark.parametrize("name", ["cut.mp4", "cut.webm"])
def test_a_file_cut_short_yields_the_frames_there_and_says_so(media, clips, name):
    """An MP4 with its index first keeps the index of every frame, but only the frames
    before the cut are there; a WebM keeps its whole clusters. Either way the frames there
    come out, in order, and then `truncated` is set and the count and length corrected."""
    got = opened(media, clips[name])
    frames = got["frames"]
    assert 0 < len(frames) < FRAMES
    assert [f["index"] for f in frames] == list(range(len(frames)))
    assert [f["timestamp"] for f in frames] == pytest.approx(
        [i / FPS for i in range(len(frames))], abs=0.002)
    assert got["fps"] == FPS
    assert got["after"]["truncated"] is True and got["after"]["frameCount"] == len(frames)
    assert got["after"]["duration"] == pytest.approx(len(frames) / FPS, abs=0.05)
