"""Video and camera in the page: the flow and warp on the page's backends against native
TensorFlow's, and the live camera (Chromium's fake one): dreamt frames shown with their
rate, released when stopped or hidden, a refused permission said in a sentence."""

import numpy as np
import pytest
from conftest import READY, STATUS, bounded, open_page
from test_engine_browser import decode, open_engine

from scripts.serving import launch

FLOW = """async ([a, b, shape]) => {
  const { engine } = window.dreamframe;
  const h = window.testHelpers;
  const before = h.fromB64(a, shape), after = h.fromB64(b, shape);
  const [flow, warped] = await engine.flow(before, after);
  const out = [h.b64(await flow.data()), h.b64(await warped.data())];
  window.dreamframe.tf.dispose([before, after, flow, warped]);
  return out;
}"""


def b64(array: np.ndarray) -> str:
    import base64

    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode()


@pytest.mark.parametrize("backend", ["wasm", "webgl"])
def test_the_pages_flow_and_warp_match_native_tensorflow(browser, site_url, backend):
    """Two frames of the test video, 3 frames apart (the square moved 9 px): the page's
    optical flow and the frame read along it equal native TensorFlow's."""
    from dreamengine.flow import optical_flow
    from native.tf_backend import TfBackend, to_tensor
    from scripts.sample_video import MovingSquare

    video = MovingSquare(160, 120)
    a, b = to_tensor(video.frame(0)), to_tensor(video.frame(3))
    ops = TfBackend(None, {"outputs": []})
    want_flow = np.asarray(optical_flow(ops, a, b))
    want_warped = np.asarray(ops.warp(b, optical_flow(ops, a, b)))
    with open_page(browser) as page:
        open_engine(page, site_url + f"index.html?backend={backend}&prepare=off")
        shape = list(a.shape)
        flow, warped = bounded(page, 120, "the page's flow", FLOW,
                               [b64(np.asarray(a)), b64(np.asarray(b)), shape])
    got_flow = decode(flow, want_flow.shape)
    got_warped = decode(warped, want_warped.shape)
    # The flow is found: the square's 9 px to the right, the photo still.
    assert np.abs(want_flow).max() > 5
    error = np.abs(got_flow - want_flow)
    assert np.percentile(error, 99) < 0.01 and error.max() < 0.2, (
        np.percentile(error, [50, 99, 100]))
    assert np.abs(got_warped - want_warped).max() < 0.02


# getUserMedia's streams kept where the test can see whether the camera was let go.
KEEP_STREAMS = """(() => {
  const media = navigator.mediaDevices;
  if (!media) return;
  const open = media.getUserMedia.bind(media);
  window.__streams = [];
  media.getUserMedia = async (constraints) => {
    const stream = await open(constraints);
    window.__streams.push(stream);
    return stream;
  };
})();"""
RELEASED = ("() => window.__streams.length > 0 && window.__streams.every("
            "(s) => s.getTracks().every((t) => t.readyState === 'ended'))")
LIVE = "() => document.getElementById('progress-text').textContent.startsWith('Live ·')"


@pytest.fixture(scope="module")
def camera_browser(playwright_driver):
    browser = launch(playwright_driver, camera=True)
    yield browser
    browser.close()


def open_camera_page(page, site_url: str) -> None:
    page.add_init_script(KEEP_STREAMS)
    page.goto(site_url + "index.html?backend=wasm&camera_max_side=96&octaves=1&steps=2")
    page.wait_for_function(READY, timeout=90_000)
    page.click("#video-box summary")


def test_the_camera_is_dreamt_live_and_let_go_when_stopped(camera_browser, site_url):
    with open_page(camera_browser) as page:
        open_camera_page(page, site_url)
        page.click("#camera-start")
        page.wait_for_function(LIVE, timeout=120_000)
        page.wait_for_function("() => document.getElementById('after').width === 96",
                               timeout=60_000)
        text = page.text_content("#progress-text")
        assert "frames a second" in text
        page.click("#stop")
        page.wait_for_function(f"() => {STATUS}.startsWith('Camera stopped after')",
                               timeout=60_000)
        assert page.evaluate(RELEASED)
        size = page.evaluate("[document.getElementById('after').width, "
                             "document.getElementById('after').height]")
        assert size == [96, 72]  # the fake camera's 640x480 at the camera size
        assert page.is_enabled("#camera-start")


def test_a_hidden_page_lets_the_camera_go(camera_browser, site_url):
    with open_page(camera_browser) as page:
        open_camera_page(page, site_url)
        page.click("#camera-start")
        page.wait_for_function(LIVE, timeout=120_000)
        page.evaluate("""() => {
          Object.defineProperty(document, 'visibilityState', { value: 'hidden',
                                                               configurable: true });
          document.dispatchEvent(new Event('visibilitychange'));
        }""")
        page.wait_for_function(RELEASED, timeout=30_000)
        page.wait_for_function(f"() => {STATUS}.startsWith('Camera stopped after')",
                               timeout=60_000)


@pytest.mark.parametrize("name, sentence", [
    ("NotAllowedError", "The camera was not allowed: allow it for this site"),
    ("NotFoundError", "No camera was found on this device."),
])
def test_a_refused_or_missing_camera_is_said_and_the_page_carries_on(browser, site_url, name,
                                                                     sentence):
    with open_page(browser) as page:
        page.add_init_script(f"""navigator.mediaDevices.getUserMedia = async () => {{
          throw new DOMException('denied by the test', '{name}'); }};""")
        page.goto(site_url + "index.html?backend=wasm&sample=chelsea")
        page.wait_for_function(f"() => window.dreamframe && {STATUS}.startsWith('Photo loaded')",
                               timeout=90_000)
        page.click("#video-box summary")
        page.click("#camera-start")
        page.wait_for_function(f"() => {STATUS}.includes({sentence!r})", timeout=60_000)
        assert page.is_enabled("#start") and page.is_enabled("#camera-start")


# --- a video file, dreamt in the page -----------------------------------------------------------

# Quick settings: one octave for the first frame, one step a later frame.
QUICK = "octaves=1&steps=2&video_steps=1"
VIDEO_DONE = f"() => /^(Done|Stopped|The file was cut short)/.test({STATUS})"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The test video (192x144, 48 frames at 24 fps, H.264 with an AAC tone), a long tiny one
    for memory, and files the page must refuse or cut."""
    from scripts import sample_video

    root = tmp_path_factory.mktemp("clips")
    clip = sample_video.write(root / "clip.mp4", width=192, height=144)
    made = {"clip": clip,
            "long": sample_video.write(root / "long.mp4", frames=200, width=64, height=48,
                                       audio=None),
            "cut": root / "cut.mp4", "photo": root / "photo.mp4"}
    made["cut"].write_bytes(clip.read_bytes()[:int(clip.stat().st_size * 0.6)])
    made["photo"].write_bytes(sample_video.PHOTO.read_bytes())
    return made


def streams(data: bytes) -> dict:
    import io

    import av

    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        audio = container.streams.audio
        return {"frames": len(frames), "size": (video.codec_context.width,
                                                 video.codec_context.height),
                "fps": float(video.average_rate), "audio": audio[0].codec_context.name
                if audio else None, "first": frames[0], "seconds": container.duration / 1e6}


def open_video_page(page, site_url: str, extra: str = "") -> None:
    page.goto(site_url + f"index.html?backend=wasm&{QUICK}{extra}")
    page.wait_for_function(READY, timeout=90_000)
    page.click("#video-box summary")


def choose(page, path) -> str:
    page.set_input_files("#video-file", str(path))
    page.wait_for_function(f"() => /^(Video loaded|Could not|.* has )/.test({STATUS})",
                           timeout=60_000)
    return page.text_content("#status")


def downloaded(page, button: str) -> bytes:
    with page.expect_download() as download:
        page.click(button)
    return open(download.value.path(), "rb").read()


def test_a_video_is_dreamt_with_its_frames_rate_size_and_sound(browser, site_url, clips):
    """The test video in, through the file input: said before it starts, every frame
    dreamt, and the video out decodes (PyAV) to the same frame count, size and rate, with
    its audio."""
    source = streams(clips["clip"].read_bytes())
    with open_page(browser) as page:
        open_video_page(page, site_url)
        assert choose(page, clips["clip"]) == "Video loaded. Press Dream the video."
        assert page.text_content("#video-note").startswith(
            "clip: 48 frames (2.0 s at 24.0 fps), dreamt at 192×144")
        page.click("#video-start")
        page.wait_for_function(VIDEO_DONE, timeout=300_000)
        assert page.text_content("#status").startswith("Done: 48 frames in ")
        made = streams(downloaded(page, "#video-download"))
    assert made["frames"] == source["frames"] == 48
    assert made["size"] == source["size"] == (192, 144) and made["fps"] == 24
    assert made["audio"] is not None and abs(made["seconds"] - source["seconds"]) < 0.15
    change = np.abs(made["first"].astype(float) - source["first"]).mean()
    assert change > 5, change  # dreamt, not copied


def test_stop_keeps_the_frames_made_and_bad_files_get_a_sentence(browser, site_url, clips):
    with open_page(browser) as page:
        open_video_page(page, site_url)
        assert choose(page, clips["photo"]).startswith("Could not open that video: ")
        assert page.is_disabled("#video-start")
        choose(page, clips["clip"])
        page.click("#video-start")
        page.wait_for_function("() => /^Frame ([4-9]|\\d\\d)\\//.test("
                               "document.getElementById('progress-text').textContent)",
                               timeout=120_000)
        page.click("#stop")
        page.wait_for_function(VIDEO_DONE, timeout=60_000)
        status = page.text_content("#status")
        assert status.startswith("Stopped after "), status
        kept = int(status.split()[2])
        assert 4 <= kept < 48
        assert streams(downloaded(page, "#video-download"))["frames"] == kept
        choose(page, clips["cut"])
        page.click("#video-start")
        page.wait_for_function(VIDEO_DONE, timeout=300_000)
        status = page.text_content("#status")
        assert status.startswith("The file was cut short: dreamt the "), status
        assert 0 < int(status.split()[7]) < 48
        assert page.is_enabled("#start") or page.is_enabled("#video-start")


# The live tensor count each time the progress line changes (once a frame, between frames).
COUNT_TENSORS = """(() => {
  window.__tensors = [];
  const line = document.getElementById('progress-text');
  new MutationObserver(() => {
    if (line.textContent.startsWith('Frame ')) {
      window.__tensors.push(window.dreamframe.tf.memory().numTensors);
    }
  }).observe(line, { childList: true, characterData: true, subtree: true });
})()"""


def test_memory_stays_flat_over_two_hundred_frames(browser, site_url, clips):
    with open_page(browser) as page:
        open_video_page(page, site_url)
        choose(page, clips["long"])
        page.evaluate(COUNT_TENSORS)
        page.click("#video-start")
        page.wait_for_function(VIDEO_DONE, timeout=300_000)
        assert page.text_content("#status").startswith("Done: 200 frames")
        counts = page.evaluate("window.__tensors")
    assert len(counts) == 200
    assert counts[5:] == [counts[5]] * 195, sorted(set(counts))


def test_the_camera_records_a_video_of_its_dreams(camera_browser, site_url):
    with open_page(camera_browser) as page:
        open_camera_page(page, site_url)
        page.click("#camera-start")
        page.wait_for_function(LIVE, timeout=120_000)
        page.click("#camera-record")
        page.wait_for_function("() => document.getElementById('progress-text').textContent"
                               ".includes('recording')", timeout=60_000)
        page.wait_for_timeout(3000)
        page.click("#camera-record")  # finish the recording; the camera goes on
        page.wait_for_function("() => !document.getElementById('camera-download').disabled",
                               timeout=60_000)
        made = streams(downloaded(page, "#camera-download"))
        page.click("#stop")
        page.wait_for_function(RELEASED, timeout=60_000)
    assert made["frames"] >= 2 and made["size"] == (96, 72)


def test_the_embed_api_round_trips_a_video(browser, site_url, clips, tmp_path):
    """A blog on another origin posts {type: 'video', video: Blob}: progress per frame,
    then `done` carrying the video, its format and frame count."""
    import base64

    from conftest import serve
    from test_page_promises import EMBED_HOST, EMBED_SCRIPT, FINAL, OTHER_PAGE, OTHER_SCRIPT

    (tmp_path / "index.html").write_text(
        EMBED_HOST.format(src=site_url + "index.html?embed&backend=wasm"))
    for name, text in (("host.js", EMBED_SCRIPT), ("other.html", OTHER_PAGE),
                       ("other.js", OTHER_SCRIPT)):
        (tmp_path / name).write_text(text)
    (tmp_path / "clip.mp4").write_bytes(clips["clip"].read_bytes())
    server, url = serve(tmp_path)
    try:
        with open_page(browser) as page:
            page.goto(url + "index.html")
            page.wait_for_function("() => window.replies.some((r) => r.type === 'ready')",
                                   timeout=90_000)
            page.evaluate("send([{ type: 'video', id: 'v', video: 'clip.mp4', settings: "
                          "{ octaves: 1, steps: 1, video_steps: 1, video_max_side: 96 } }])")
            page.wait_for_function(FINAL, arg="v", timeout=300_000)
            got = [r for r in page.evaluate("window.replies") if r.get("id") == "v"]
    finally:
        server.shutdown()
    done = got[-1]
    assert done["type"] == "done", done
    assert [r["frame"] for r in got if r["type"] == "progress"] == list(range(1, 49))
    assert done["frames"] == 48 and done["format"] in ("mp4", "webm")
    made = streams(base64.b64decode(done["video"]["b64"]))
    assert made["frames"] == 48 and made["size"] == (96, 72) and made["audio"] is not None
