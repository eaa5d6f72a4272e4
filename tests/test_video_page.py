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
