"""Page features a visitor or an embedding page relies on, each checked where it shows:
the note on a scaled photo, dreaming again on the result, the compare slider, the embedding
protocol's stop, error and busy replies, hidden URL settings in a real dream, and wasm threads
through the service worker. The built site, wasm backend, small photos."""

import io

import numpy as np
import pytest
from conftest import READY, STATUS, open_page, serve, watched_page
from PIL import Image

# Every status text, and every size the result canvas takes (each octave's, as it is drawn).
WATCH = """() => {
  window.statusLog = [];
  const status = document.getElementById('status');
  new MutationObserver(() => window.statusLog.push(status.textContent))
    .observe(status, { childList: true, characterData: true, subtree: true });
  window.afterSizes = [];
  const after = document.getElementById('after');
  new MutationObserver(() => {
    const size = [after.width, after.height];
    const last = window.afterSizes[window.afterSizes.length - 1];
    if (!last || last[0] !== size[0] || last[1] !== size[1]) window.afterSizes.push(size);
  }).observe(after, { attributes: true, attributeFilter: ['width', 'height'] });
}"""
PIXELS = """(id) => { const c = document.getElementById(id);
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real photos as files: small ones to dream on, one too small, one too large to keep."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    made = {}
    for name, pixels, size, fmt in (
            ("small.png", data.chelsea(), (96, 64), "PNG"),
            ("square.png", data.coffee(), (80, 80), "PNG"),
            ("medium.png", data.astronaut(), (128, 96), "PNG"),
            ("tiny.png", data.coffee(), (20, 20), "PNG"),
            ("large.jpg", data.astronaut(), (2400, 1600), "JPEG")):
        path = root / name
        Image.fromarray(pixels).resize(size).save(path, fmt)
        made[name] = path
    return made


def open_site(page, site_url: str, query: str) -> None:
    page.goto(site_url + "index.html?backend=wasm&" + query)
    page.wait_for_function(READY, timeout=90_000)
    page.evaluate(WATCH)


def load(page, path) -> None:
    page.set_input_files("#file", str(path))
    page.wait_for_function(f"() => {STATUS}.startsWith('Photo loaded')")


def dream(page, button: str = "#start") -> None:
    """Press `button` and wait for this dream's "Done" (the status may still show the last)."""
    page.evaluate("window.statusLog = []")
    page.click(button)
    page.wait_for_function("() => window.statusLog.some((text) => text.startsWith('Done'))",
                           timeout=120_000)


def pixels(page, canvas: str) -> np.ndarray:
    return np.asarray(page.evaluate(PIXELS, canvas), dtype=np.float64)


def test_a_photo_larger_than_2048_px_is_scaled_down_with_a_note(page, site_url, photos):
    open_site(page, site_url, "")
    load(page, photos["large.jpg"])
    # 1600 * 2048 / 2400 = 1365.3: the shorter side rounds down.
    assert page.locator("#note").inner_text() == (
        "Scaled from 2400×1600 to 2048×1365 (at most 2048 px on the longer side).")
    assert page.evaluate("[before.width, before.height, after.width, after.height]") == (
        [2048, 1365] * 2)


def test_dream_again_dreams_on_the_result(page, site_url, photos):
    open_site(page, site_url, "octaves=1&steps=2&step_size=0.05")
    load(page, photos["small.png"])
    photo = pixels(page, "before")
    dream(page)
    first = pixels(page, "after")
    assert np.abs(first - photo).mean() > 1.0  # the first dream changed the photo
    dream(page, "#again")
    # The result became the photo (exactly its pixels), and a second dream ran on it.
    assert np.array_equal(pixels(page, "before"), first)
    log = page.evaluate("window.statusLog")
    assert log[0] == "Dreaming…" and log[-1].startswith("Done"), log
    second = pixels(page, "after")
    assert np.abs(second - first).mean() > 1.0


def test_the_compare_slider_reveals_the_photo_left_of_it(page, site_url, photos):
    open_site(page, site_url, "octaves=1&steps=3&step_size=0.1")
    load(page, photos["small.png"])
    assert page.locator("#compare-slider").is_disabled()  # nothing to compare yet
    dream(page)
    slider = page.locator("#compare-slider")
    assert not slider.is_disabled() and slider.input_value() == "100"

    def shot_at(value: int) -> np.ndarray:
        slider.focus()
        page.keyboard.press("End")
        for _ in range(100 - value):  # as a visitor moves it: arrow keys, input events
            page.keyboard.press("ArrowLeft")
        assert page.evaluate(
            "document.getElementById('compare').style.getPropertyValue('--reveal')") == (
            f"{value}%")
        shot = Image.open(io.BytesIO(page.locator("#compare").screenshot()))
        return np.asarray(shot.convert("RGB"), dtype=np.float64)

    dream_shot, photo_shot, split = shot_at(100), shot_at(0), shot_at(30)
    assert np.abs(dream_shot - photo_shot).mean() > 1.0
    width = split.shape[1]
    left, right = slice(0, int(width * 0.7) - 2), slice(int(width * 0.7) + 2, width)
    # Left of the slider's position the photo shows, right of it the dream.
    assert np.abs(split[:, left] - photo_shot[:, left]).max() == 0
    assert np.abs(split[:, right] - dream_shot[:, right]).max() == 0
    assert np.abs(split[:, left] - dream_shot[:, left]).mean() > 1.0


def test_channel_and_octave_scale_from_the_url_shape_a_real_dream(page, site_url, photos):
    """The same dream of a 128x96 photo (two octaves, seed 5), plain, with one channel, and
    with another octave scale: each setting changes the dream, and the scale the size of the
    first octave (1/1.4 of the photo by default, 1/1.8 here), as the canvas shows it."""
    results = {}
    for query, sizes in (("", [[91, 69], [128, 96]]),
                         ("&channel=block_5_expand_relu:7", [[91, 69], [128, 96]]),
                         ("&octave_scale=1.8", [[71, 53], [128, 96]])):
        open_site(page, site_url, "octaves=2&steps=1&seed=5" + query)
        load(page, photos["medium.png"])
        page.evaluate("window.afterSizes = []")
        dream(page)
        assert page.evaluate("window.afterSizes") == sizes, query
        results[query] = pixels(page, "after")
    for query in ("&channel=block_5_expand_relu:7", "&octave_scale=1.8"):
        assert np.abs(results[query] - results[""]).mean() > 1.0, query


EMBED_HOST = """<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<iframe id="dream" src="{src}" width="800" height="700"
  sandbox="allow-scripts allow-same-origin" title="Dreamframe"></iframe>
<script src="host.js"></script>"""
# Records every reply (its image as {size, type}); `send(requests)` fetches the images first,
# then posts every request in the same task, back to back.
EMBED_SCRIPT = """
window.replies = [];
addEventListener('message', (event) => {
  if (!event.data || event.data.source !== 'dreamframe') return;
  const { image, ...rest } = event.data;
  if (image) rest.image = { size: image.size, type: image.type };
  window.replies.push(rest);
  if (window.onReply) window.onReply(rest);
});
window.send = async (requests) => {
  const messages = [];
  for (const { image, ...rest } of requests) {
    messages.push(image ? { ...rest, image: await (await fetch(image)).blob() } : rest);
  }
  const frame = document.getElementById('dream').contentWindow;
  for (const message of messages) frame.postMessage(message, '*');
};
"""


@pytest.fixture(scope="module")
def embed_url(site_url, photos, tmp_path_factory):
    """A blog on another origin that embeds the page and talks to it."""
    host = tmp_path_factory.mktemp("embedder")
    (host / "index.html").write_text(
        EMBED_HOST.format(src=site_url + "index.html?embed&backend=wasm"))
    (host / "host.js").write_text(EMBED_SCRIPT)
    for name in ("small.png", "square.png", "tiny.png"):
        (host / name).write_bytes(photos[name].read_bytes())
    server, url = serve(host)
    yield url + "index.html"
    server.shutdown()


def replies_to(page, request_id=None, final_only: bool = True) -> list:
    """The replies (types) to one request, progress left out unless asked for."""
    return [r for r in page.evaluate("window.replies")
            if r["type"] not in ("ready", "prepared") and r.get("id") == request_id
            and not (final_only and r["type"] == "progress")]


def nothing_else_follows(page) -> None:
    """Send one more request, which an idle page refuses at once, and wait for its reply:
    whatever the earlier requests were still to send, the frame sent before it (messages
    from one window arrive in order). A page still dreaming would say "busy" instead."""
    page.evaluate("send([{ type: 'dream', id: 'probe', settings: { model: 'no_such_model' } }])")
    page.wait_for_function("() => window.replies.some((r) => r.id === 'probe')")
    replies = page.evaluate("window.replies")
    assert replies[-1] == {"source": "dreamframe", "type": "error", "id": "probe",
                           "message": "unknown model no_such_model; valid models: "
                                      "inception_v3, mobilenet_v2"}, replies[-1]
    assert [r for r in replies if r.get("id") == "probe"] == [replies[-1]]


def test_an_embedding_page_can_stop_a_dream(module_context, embed_url):
    with watched_page(module_context) as page:
        page.goto(embed_url)
        page.wait_for_function("() => window.replies.some((r) => r.type === 'ready')",
                               timeout=90_000)
        # Stop as soon as the first step is reported.
        page.evaluate("""() => { window.onReply = (reply) => {
          if (reply.type === 'progress' && reply.done === 1) {
            document.getElementById('dream').contentWindow.postMessage({ type: 'stop' }, '*');
          } }; }""")
        page.evaluate("send([{ type: 'dream', image: 'small.png', "
                      "settings: { octaves: 2, steps: 50 } }])")
        page.wait_for_function("() => window.replies.some((r) => r.type === 'stopped')",
                               timeout=60_000)
        nothing_else_follows(page)
        assert [r["type"] for r in replies_to(page)] == ["stopped"]
        progress = [r for r in replies_to(page, final_only=False) if r["type"] == "progress"]
        assert 1 <= len(progress) <= 2  # the step under way when stop came finishes


def test_an_embedding_page_is_told_why_its_image_cannot_dream(module_context, embed_url):
    with watched_page(module_context) as page:
        page.goto(embed_url)
        page.wait_for_function("() => window.replies.some((r) => r.type === 'ready')",
                               timeout=90_000)
        page.evaluate("send([{ type: 'dream', image: 'tiny.png', id: 7 }])")
        page.wait_for_function("() => window.replies.some((r) => r.type === 'error')",
                               timeout=30_000)
        nothing_else_follows(page)
        replies = replies_to(page, 7, final_only=False)
        assert [r["type"] for r in replies] == ["error"]
        # The page's own reason, in its own words (web/js/images.js).
        assert replies[0]["message"].startswith(
            "could not open that image: the image is too small or too thin to dream: 20×20 "
            "pixels")


def test_back_to_back_requests_get_one_reply_each_with_their_ids(module_context, embed_url):
    with watched_page(module_context) as page:
        page.goto(embed_url)
        page.wait_for_function("() => window.replies.some((r) => r.type === 'ready')",
                               timeout=90_000)
        page.evaluate("send([{ type: 'dream', image: 'small.png', id: 'first', "
                      "settings: { octaves: 1, steps: 2 } }, "
                      "{ type: 'dream', image: 'square.png', id: 'second' }])")
        page.wait_for_function("() => window.replies.some((r) => r.type === 'done')",
                               timeout=60_000)
        nothing_else_follows(page)
        first, second = replies_to(page, "first"), replies_to(page, "second")
        assert [r["type"] for r in first] == ["done"]
        assert [r["type"] for r in second] == ["busy"]
        # The done is the first request's dream: its image's size, a PNG.
        assert (first[0]["width"], first[0]["height"]) == (96, 64)
        assert first[0]["image"]["type"] == "image/png" and first[0]["image"]["size"] > 1000
        progress = [r for r in replies_to(page, "first", final_only=False)
                    if r["type"] == "progress"]
        assert [r["done"] for r in progress] == [1, 2]
        assert replies_to(page, None) == []  # every reply carries its request's id


# tfjs's wasm backend sizes its thread pool from navigator.hardwareConcurrency (half of it,
# at most 8: tfjs-backend-wasm's backend.cc, read once as the module starts). This machine
# has 2 cores, so the pool would hold one thread, and a test of threads would pass with none:
# the page is told of 4, before any of its scripts run.
REPORTED_CORES = 4
MORE_CORES = f"""Object.defineProperty(Navigator.prototype, 'hardwareConcurrency',
  {{ get: () => {REPORTED_CORES}, configurable: true }});"""


def test_threads_come_with_the_service_worker_and_a_dream_still_runs(browser, site_url,
                                                                     photos):
    """`?threads=now`: web/sw.js adds COOP/COEP to the site's responses, the page reloads
    once, is cross-origin isolated, and tfjs's threaded wasm build runs the dream on more
    than one thread: XNNPACK's pool reports them, and its worker threads are running."""
    with open_page(browser, service_workers="allow") as page:
        page.add_init_script(MORE_CORES)
        page.goto(site_url + "index.html?backend=wasm&threads=now&octaves=1&steps=1")
        # Playwright runs this wait again in the reloaded page.
        page.wait_for_function("() => self.crossOriginIsolated && " + READY[6:], timeout=90_000)
        state = page.evaluate("""() => {
          const { tf } = window.dreamframe;
          return {
            isolated: self.crossOriginIsolated,
            controlled: Boolean(navigator.serviceWorker.controller),
            threads: tf.wasm.getThreadsCount(),
            workers: tf.backend().wasm.PThread.runningWorkers.length,
            cores: navigator.hardwareConcurrency,
            wasm: performance.getEntriesByType('resource').map((e) => e.name)
              .filter((name) => name.endsWith('.wasm') && name.includes('tfjs-backend-wasm')),
            backend: document.getElementById('backend').textContent,
          };
        }""")
        assert state["isolated"] and state["controlled"], state
        assert state["cores"] == REPORTED_CORES, state
        assert [name.rsplit("/", 1)[1] for name in state["wasm"]] == [
            "tfjs-backend-wasm-threaded-simd.wasm"], state
        count = state["threads"]
        assert count > 1, state
        # pthreadpool runs its work on the calling thread and count - 1 Web Workers.
        assert state["workers"] == count - 1, state
        # The page names the thread count tfjs really runs.
        assert f"wasm SIMD, threaded build, {count} threads" in state["backend"], state
        page.evaluate(WATCH)
        load(page, photos["small.png"])
        dream(page)
        assert page.evaluate("window.dreamframe.tf.wasm.getThreadsCount()") == count
