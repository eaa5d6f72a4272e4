"""What the README and docs/ promise of the page and no other test checked (issue 17), on the page itself.

How a dream is checked: the page's result (its canvas) is compared with the engine's own dream
(`window.dreamframe.engine`) of the same photo, in the same page, on the same backend, with
the settings the promise names: identical pixels show the page used exactly those settings,
and a difference from the default dream that the setting made a difference. Same page, same
backend and same inputs give the same numbers, so nothing here depends on the machine's
numerics. Small photos, one octave, few steps; related checks share one page.
"""

import base64
import io
import re
from urllib.parse import urlparse

import numpy as np
import pytest
import settings
from conftest import READY, STATUS, open_page, serve, watched_page
from PIL import Image

from dreamengine.schedule import Schedule

# Every status and progress text, and every size the result canvas takes.
WATCH = """() => {
  const log = (id, into) => { window[into] = []; const node = document.getElementById(id);
    new MutationObserver(() => window[into].push(node.textContent))
      .observe(node, { childList: true, characterData: true, subtree: true }); };
  log('status', 'statusLog');
  log('progress-text', 'progressLog');
  window.afterSizes = [];
  const after = document.getElementById('after');
  new MutationObserver(() => {
    const size = [after.width, after.height], last = window.afterSizes.at(-1);
    if (!last || last[0] !== size[0] || last[1] !== size[1]) window.afterSizes.push(size);
  }).observe(after, { attributes: true, attributeFilter: ['width', 'height'] });
}"""
# A canvas as {width, height, data: base64 RGBA}; `shot` is defined in every snippet below.
SHOT = """
  const shot = (canvas) => {
    const bytes = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let text = ''; for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)); }
    return { width: canvas.width, height: canvas.height, data: btoa(text) };
  };"""
CANVAS = "(id) => {" + SHOT + " return shot(document.getElementById(id)); }"
# The engine's dream of the photo the page shows (and of its guide, if asked), drawn as the
# page draws its result.
REFERENCE = "async ([options, guided]) => {" + SHOT + """
  const { tf, engine, images } = window.dreamframe;
  const photo = images.toTensor(tf, document.getElementById('before'));
  const guide = guided ? images.toTensor(tf, document.getElementById('guide')) : null;
  const result = await engine.dream(photo, JSON.stringify(options), null, guide);
  const canvas = document.createElement('canvas');
  await images.drawTensor(tf, result, canvas);
  tf.dispose(guide ? [photo, guide, result] : [photo, result]);
  return shot(canvas);
}"""
# The engine's zoom of the photo the page shows: its last frame, drawn as the page draws it.
ZOOM_REFERENCE = "async (options) => {" + SHOT + """
  const { tf, engine, images } = window.dreamframe;
  const photo = images.toTensor(tf, document.getElementById('before'));
  let last = null;
  await engine.zoom(photo, JSON.stringify(options), (frame) => {
    if (last) last.dispose();
    last = tf.clone(frame.image);   // borrowed until the callback returns
  });
  const canvas = document.createElement('canvas');
  await images.drawTensor(tf, last, canvas);
  tf.dispose([photo, last]);
  return shot(canvas);
}"""
LAYERS = ["block_2_expand_relu", "block_5_expand_relu", "block_8_expand_relu",
          "block_12_expand_relu", "block_15_expand_relu"]


def pixels(shot: dict) -> np.ndarray:
    """RGB pixels of a `shot` (alpha dropped), as float for differences."""
    rgba = np.frombuffer(base64.b64decode(shot["data"]), dtype=np.uint8)
    return rgba.reshape(shot["height"], shot["width"], 4)[..., :3].astype(np.float64)


def canvas(page, element_id: str) -> np.ndarray:
    return pixels(page.evaluate(CANVAS, element_id))


def reference(page, options: dict, guided: bool = False) -> np.ndarray:
    return pixels(page.evaluate(REFERENCE, [options, guided]))


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (0-255); infinite when the sizes differ."""
    return float(np.abs(a - b).mean()) if a.shape == b.shape else float("inf")


def same_origin_only(page, site_url: str) -> None:
    """Every request of the page (its frames too) went to the site's own origin."""
    origin = urlparse(site_url).netloc
    foreign = [u for u in page.requests
               if not u.startswith(("data:", "blob:")) and urlparse(u).netloc != origin]
    assert foreign == []


def dream(page, button: str = "#start") -> np.ndarray:
    """Press `button`, wait for this dream's "Done", return the result as the page shows it."""
    page.evaluate("window.statusLog = []; window.progressLog = []; window.afterSizes = []")
    page.click(button)
    page.wait_for_function("() => window.statusLog.some((text) => text.startsWith('Done'))",
                           timeout=120_000)
    return canvas(page, "after")


def weights_shown(page) -> dict:
    return page.evaluate("(layers) => Object.fromEntries(layers.map((l) => "
                         "[l, Number(document.getElementById('w-' + l).value)]))", LAYERS)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real photos as PNG files: a small one to dream on, a guide, one for out of memory."""
    from skimage import data

    root = tmp_path_factory.mktemp("promises")
    made = {}
    for name, source, size in (("photo.png", data.chelsea(), (64, 48)),
                               ("guide.png", data.coffee(), (64, 48)),
                               ("large.png", data.astronaut(), (256, 256))):
        Image.fromarray(source).resize(size, Image.LANCZOS).save(root / name)
        made[name] = root / name
    return made


def test_the_default_guide_layer_is_the_deepest_of_each_models_default_objective():
    """Named per model in presets (MicroPython's dicts have no order to read it from): the
    table must follow the models' manifests and default objectives."""
    import json

    import settings
    from conftest import REPO

    from dreamengine import presets

    for model, table in presets.PRESETS_BY_MODEL.items():
        manifest = json.loads((REPO / "models" / model / "manifest.json").read_text())
        order = [out["layer"] for out in manifest["outputs"]]
        deepest = max(table["default"]["weights"], key=order.index)
        assert presets.GUIDE_LAYERS_BY_MODEL[model] == [deepest]
        assert settings.resolve({}, model)["guide_layers"] == [deepest]


# --- one visit: the controls, URL settings without controls, the guide and channel panels ---

# Settings of the whole visit: two without a control on the page (docs/embedding.md: they hold for
# every dream of the visit), and no service worker. Every dream below is one octave of two
# steps unless a check changes that.
VISIT = "octaves=1&steps=2&norm=l2&guide_layers=textures&threads=off"
BASE = {"octaves": 1, "steps": 2, "norm": "l2"}  # what the visit's dreams are made with
TEXTURES = ["block_5_expand_relu"]  # guide_layers=textures, by its label


@pytest.fixture(scope="module")
def studio(browser, site_url, photos):
    """One page for the checks of the page's own controls and panels, the photo loaded."""
    with open_page(browser, service_workers="allow") as page:  # the threads=off test
        page.goto(site_url + "index.html?backend=wasm&" + VISIT)
        page.wait_for_function(READY, timeout=90_000)
        page.evaluate(WATCH)
        for box in ("advanced", "guide-box", "zoom-box"):  # every control in view
            page.click(f"#{box} summary")
        page.set_input_files("#file", str(photos["photo.png"]))
        page.wait_for_function(f"() => {STATUS}.startsWith('Photo loaded')")
        yield page


def back_to_default(page) -> None:
    """The Default style, one octave of two steps, the guide at full strength."""
    page.select_option("#preset", "default")
    page.fill("#octaves", "1")
    page.fill("#steps", "2")
    page.fill("#guide_mix", "1")
    assert weights_shown(page) == dict(zip(LAYERS, [0, 0.5, 1, 1, 0], strict=True))


def test_the_pages_controls_change_the_dream_as_they_say(studio):
    page = studio
    back_to_default(page)
    base = dream(page)
    assert difference(base, reference(page, BASE)) == 0  # the page dreams what it shows
    assert difference(base, canvas(page, "before")) > 1.0

    # The style: its layers appear on the sliders and the dream is that style's.
    page.select_option("#preset", "deep")
    assert weights_shown(page) == dict(zip(LAYERS, [0, 0, 0, 1, 1], strict=True))
    assert page.input_value("#steps") == "12"
    page.fill("#octaves", "1")
    page.fill("#steps", "2")
    deep = dream(page)
    assert difference(deep, reference(page, {**BASE, "preset": "deep"})) == 0
    assert difference(deep, base) > 0.5
    back_to_default(page)

    # Steps: three steps are taken (and shown), and the dream is a three-step one.
    page.fill("#steps", "3")
    three = dream(page)
    assert [t.split(" · ")[1] for t in page.evaluate("window.progressLog")
            if t.startswith("Octave")] == ["step 1/3", "step 2/3", "step 3/3"]
    assert difference(three, reference(page, {**BASE, "steps": 3})) == 0
    assert difference(three, base) > 0.5
    page.fill("#steps", "2")

    # Octaves: two, at the sizes the schedule gives, smallest first.
    page.fill("#octaves", "2")
    two = dream(page)
    sizes = Schedule(2, 1.4, 2, 0.02, 31).octave_sizes(48, 64)
    assert page.evaluate("window.afterSizes") == [[w, h] for h, w in sizes]
    assert difference(two, reference(page, {**BASE, "octaves": 2})) == 0
    assert difference(two, base) > 0.5
    page.fill("#octaves", "1")

    # Step size: a larger step takes the dream further from the photo.
    page.fill("#step_size", "0.06")
    far = dream(page)
    assert difference(far, reference(page, {**BASE, "step_size": 0.06})) == 0
    photo = canvas(page, "before")
    assert difference(far, photo) > 1.5 * difference(base, photo)
    page.fill("#step_size", "0.02")

    # Seed: another draw of the jitter, another dream.
    page.fill("#seed", "7")
    seeded = dream(page)
    assert difference(seeded, reference(page, {**BASE, "seed": 7})) == 0
    assert difference(seeded, base) > 0.5
    page.fill("#seed", "0")

    # A layer's weight, by keyboard on its slider: "creatures" to the most, "textures" off.
    page.focus("#w-block_15_expand_relu")
    page.keyboard.press("End")
    page.focus("#w-block_5_expand_relu")
    page.keyboard.press("Home")
    assert page.inner_text("#v-block_15_expand_relu") == "2"
    assert page.inner_text("#v-block_5_expand_relu") == "0"
    weighted = dream(page)
    weights = {"block_8_expand_relu": 1, "block_12_expand_relu": 1, "block_15_expand_relu": 2}
    assert difference(weighted, reference(page, {**BASE, "weights": weights})) == 0
    assert difference(weighted, base) > 0.5
    back_to_default(page)
    assert page.console_errors == []


def test_url_settings_without_controls_and_the_guide_panel(studio, photos):
    """`norm` and `guide_layers` from the URL hold for every dream; a guide is picked,
    followed (at the strength its control says), and cleared."""
    page = studio
    back_to_default(page)
    plain = dream(page)
    assert difference(plain, reference(page, BASE)) == 0  # norm=l2 from the URL
    assert difference(plain, reference(page, {**BASE, "norm": "mean"})) > 0.5

    page.set_input_files("#guide-file", str(photos["guide.png"]))
    page.wait_for_function("() => document.getElementById('guide-note').textContent === "
                           "'Guide 64×48 px: the next dream follows it.'")
    assert not page.locator("#guide-clear").is_disabled()
    guide = np.asarray(Image.open(photos["guide.png"]).convert("RGB"), dtype=np.float64)
    assert difference(canvas(page, "guide"), guide) == 0  # the preview is the guide
    guided = dream(page)
    # Guided at the URL's layer ("textures"), not the default one (block_12_expand_relu).
    assert difference(guided, reference(page, {**BASE, "guide_layers": TEXTURES}, True)) == 0
    default_guide = reference(page, BASE, True)
    assert difference(guided, default_guide) > 0.5
    assert difference(default_guide, reference(
        page, {**BASE, "guide_layers": ["block_12_expand_relu"]}, True)) == 0
    assert difference(guided, plain) > 0.5

    page.fill("#guide_mix", "0.5")  # the guide's strength
    half = dream(page)
    assert difference(half, reference(
        page, {**BASE, "guide_layers": TEXTURES, "guide_mix": 0.5}, True)) == 0
    assert difference(half, guided) > 0.5
    page.fill("#guide_mix", "1")

    page.click("#guide-clear")
    assert page.inner_text("#guide-note") == ""
    assert page.locator("#guide-clear").is_disabled()
    assert page.evaluate("[guide.width, guide.height]") == [0, 0]
    assert difference(dream(page), plain) == 0  # without the guide again
    assert page.console_errors == []


# block_2_expand_relu's channel 130 never fires near grey: natively, its largest input to the
# ReLU over 96 px grey images with uniform noise (grey 0 with noise of amplitude 0.1 and 0.3,
# greys -0.2 and 0.2 with 0.1; six seeds each) is -1.85, far below the 0 where it would start
# to fire; that of every other channel from 126 to 134 is above 0.6.
SILENT = ("block_2_expand_relu", 130)
THUMBS = """() => [...document.querySelectorAll('#channel-grid button')].map((b) => {
  const grid = document.getElementById('channel-grid').getBoundingClientRect();
  const r = b.getBoundingClientRect(), c = b.querySelector('canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  return { index: Number(b.dataset.index), label: b.querySelector('span').textContent,
           visible: r.bottom > grid.top && r.top < grid.bottom, drawn: d[3] === 255,
           marked: c.dataset.marked === 'yes' && d[0] === 255 && d[1] === 0 && d[2] === 255,
           grey: d.every((v, i) => (i % 4 === 3 ? v === 255 : v === 128)) };
})"""


def test_the_channel_explorer_keeps_its_thumbnails_and_marks_silent_channels(studio):
    page = studio
    layer, silent = SILENT
    # A narrow, short grid (as on a small screen): a few thumbnails in view at a time.
    page.evaluate("() => { const grid = document.getElementById('channel-grid');"
                  " grid.style.width = '12rem'; grid.style.maxHeight = '7rem'; }")
    page.click("#channel-box summary")
    assert page.input_value("#channel-layer") == layer  # the first layer is shown first
    page.wait_for_function(f"() => {{ const shown = ({THUMBS})().filter((t) => t.visible);"
                           " return shown.length >= 2 && shown.every((t) => t.drawn); }",
                           timeout=60_000)
    # Mark what was drawn: a thumbnail made again would be painted over.
    marked = page.evaluate("""() => [...document.querySelectorAll('#channel-grid button')]
      .filter((b) => b.querySelector('canvas').getContext('2d').getImageData(0, 0, 1, 1)
                      .data[3] === 255)
      .map((b) => { const c = b.querySelector('canvas'), x = c.getContext('2d');
        x.fillStyle = '#ff00ff'; x.fillRect(0, 0, 1, 1); c.dataset.marked = 'yes';
        return Number(b.dataset.index); })""")
    assert len(marked) >= 2
    # Another layer and back: the first layer's thumbnails in view are asked for again...
    page.select_option("#channel-layer", "block_5_expand_relu")
    page.select_option("#channel-layer", layer)
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    # ... and queued before the silent channel, scrolled to now: once that one is done, any
    # of them made again would have been made first.
    page.evaluate(f"() => document.querySelector('#channel-grid [data-index=\"{silent}\"]')"
                  ".scrollIntoView({ block: 'nearest' })")
    page.wait_for_function(f"() => {{ const thumbs = ({THUMBS})();"
                           f" return thumbs[{silent}].label.includes('silent')"
                           " && thumbs.filter((t) => t.visible).every((t) => t.drawn); }",
                           timeout=60_000)
    thumbs = page.evaluate(THUMBS)
    assert [t["index"] for t in thumbs if t["marked"]] == marked  # kept, not made again
    assert thumbs[silent]["label"] == f"#{silent} (silent)" and thumbs[silent]["grey"]
    # Its neighbours in view fire on grey: drawn as pictures, not marked.
    near = [t for t in thumbs if t["visible"] and t["index"] != silent]
    assert near and not any("silent" in t["label"] or t["grey"] for t in near)
    # A silent channel is not a broken backend: the page stays where it was.
    assert page.evaluate("window.dreamframe.tf.getBackend()") == "wasm"
    assert page.evaluate("sessionStorage.getItem('dreamframe:broken-backends')") is None
    assert page.inner_text("#status").startswith(("Photo loaded", "Done"))
    page.click("#channel-box summary")  # closed: nothing more is rendered
    assert page.console_errors == []


def test_threads_off_registers_no_service_worker(studio):
    state = studio.evaluate("""async () => ({
      registrations: (await navigator.serviceWorker.getRegistrations()).length,
      controlled: Boolean(navigator.serviceWorker.controller),
      isolated: self.crossOriginIsolated })""")
    assert state == {"registrations": 0, "controlled": False, "isolated": False}
    assert "no threads (page not cross-origin isolated)" in studio.text_content("#backend")


def test_a_visit_with_inception_guides_and_zoom_asks_only_its_own_site(studio, site_url,
                                                                        photos):
    page = studio
    page.select_option("#model", "inception_v3")
    page.wait_for_function(f"() => {STATUS}.startsWith('Model ready')", timeout=120_000)
    page.fill("#octaves", "1")
    page.fill("#steps", "1")
    page.set_input_files("#guide-file", str(photos["guide.png"]))
    page.wait_for_function("() => document.getElementById('guide-note').textContent"
                           ".startsWith('Guide')")
    guided = dream(page)
    assert difference(guided, canvas(page, "before")) > 0.5
    page.fill("#zoom_frames", "2")
    page.fill("#zoom_steps", "1")
    page.evaluate("window.statusLog = []")
    page.click("#zoom-start")
    page.wait_for_function("() => window.statusLog.some((t) => t.startsWith('Done: 2 frames'))",
                           timeout=120_000)
    assert any("models/inception_v3/" in url for url in page.requests)
    same_origin_only(page, site_url)
    assert page.console_errors == []


# --- a zoom video straight from the URL -------------------------------------------------------

# Presses Stop as soon as the page shows the second frame of 600 (installed before the page
# starts, which it does at once).
STOP_AT_FRAME_2 = """document.addEventListener('DOMContentLoaded', () => {
  const text = document.getElementById('progress-text');
  const observer = new MutationObserver(() => {
    if (!text.textContent.startsWith('Frame 2/600 ')) return;
    observer.disconnect();
    document.getElementById('stop').click();
  });
  observer.observe(text, { childList: true, characterData: true, subtree: true });
});"""


def test_mode_zoom_autostart_makes_a_video_with_the_urls_settings_clamped(page, site_url):
    """Out of range: frames 1-600, zoom 1-1.5, rotation -10 to 10, steps 1-20, guide mix 0-1.
    The zoom the page makes at once is the engine's zoom with the clamped values; Stop keeps
    what was made; the panel previews it and downloads it as a video (an MP4 where the
    browser encodes H.264, as this Chromium does, else a WebM)."""
    page.add_init_script(STOP_AT_FRAME_2)
    page.goto(site_url + "index.html?backend=wasm&sample=chelsea&mode=zoom&autostart"
              "&zoom_frames=1000&zoom=9&rotation=-99&zoom_steps=0&guide_mix=-3")
    page.wait_for_function(f"() => /^(Stopped|Done)|failed/.test({STATUS})", timeout=120_000)
    assert page.inner_text("#status").startswith("Stopped after 2 frames")  # Stop came then
    made = re.search(r"as (MP4|WEBM)\. Download the video below\.$", page.inner_text("#status"))
    assert made, page.inner_text("#status")
    shown = page.evaluate("['zoom_frames', 'zoom', 'rotation', 'zoom_steps', 'guide_mix']"
                          ".map((id) => Number(document.getElementById(id).value))")
    assert shown == [600, 1.5, -10, 1, 0]
    # Every number field offers the range the page clamps to (settings.LIMITS; for zoom and
    # rotation the engine's offered ranges, dreamengine/zoom.py): the HTML names none.
    fields = ["octaves", "steps", "step_size", "jitter", "seed", "guide_mix", "zoom_frames",
              "zoom", "rotation", "zoom_steps"]
    offered = page.evaluate("(ids) => ids.map((id) => { const e = document.getElementById(id);"
                            " return [Number(e.min), Number(e.max)]; })", fields)
    assert offered == [list(settings.LIMITS[key][:2]) for key in fields]
    preview = canvas(page, "after")  # the last frame made
    clamped = {"zoom_frames": 2, "zoom": 1.5, "rotation": -10, "zoom_steps": 1}
    assert difference(preview, pixels(page.evaluate(ZOOM_REFERENCE, clamped))) == 0
    assert difference(preview, canvas(page, "before")) > 10  # zoomed 1.5x and turned

    page.evaluate("document.getElementById('zoom-box').open = true")
    with page.expect_download() as download:
        page.click("#zoom-download")
    assert download.value.suggested_filename == "chelsea-zoom." + made[1].lower()
    import av

    with av.open(download.value.path()) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(frames) == 2 and frames[-1].shape == (300, 450, 3)  # H.264, VP9: even sizes
    # Both are lossy (a few units of 255 here); the frame before it, or the photo, are 38/255
    # away.
    assert difference(frames[-1].astype(np.float64), preview[:, :450]) < 12
    same_origin_only(page, site_url)
    assert page.console_errors == []


# --- the embedding API ---------------------------------------------------------------------------

EMBED_HOST = """<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<iframe id="dream" src="{src}" width="800" height="700"
  sandbox="allow-scripts allow-same-origin" title="Dreamframe"></iframe>
<iframe id="other" src="other.html" width="100" height="100" title="Another widget"></iframe>
<script src="host.js"></script>"""
# Another widget of the blog: it can reach the embedded page's window and post to it, but it
# is not the embedded page's parent.
OTHER_PAGE = """<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script src="other.js"></script>"""
OTHER_SCRIPT = """window.post = (message) =>
  parent.document.getElementById('dream').contentWindow.postMessage(message, '*');"""
# Records every reply (an image or video as {type, b64}; `complete` once read);
# `send(requests)` fetches the files first, then posts every request in one task, each from
# the parent or, with `from: 'other'`, from the other widget.
EMBED_SCRIPT = """
window.replies = [];
const b64 = async (blob) => {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let text = ''; for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)); }
  return { type: blob.type, isBlob: blob instanceof Blob, b64: btoa(text) };
};
addEventListener('message', async (event) => {
  if (!event.data || event.data.source !== 'dreamframe') return;
  const { image, video, ...rest } = event.data;
  window.replies.push(rest);
  if (window.onReply) window.onReply(rest);
  if (image) rest.image = await b64(image);
  if (video) rest.video = await b64(video);
  rest.complete = true;
});
window.send = async (requests) => {
  const messages = [];
  for (const { from, image, guide, video, ...rest } of requests) {
    const message = { ...rest };
    if (image) message.image = await (await fetch(image)).blob();
    if (video) message.video = await (await fetch(video)).blob();
    if (guide) message.guide = await (await fetch(guide)).blob();
    messages.push([from, message]);
  }
  const frame = document.getElementById('dream').contentWindow;
  const other = document.getElementById('other').contentWindow;
  for (const [from, message] of messages) {
    if (from === 'other') other.post(message); else frame.postMessage(message, '*');
  }
};
"""
FINAL = ("(id) => window.replies.some((r) => r.id === id && r.complete"
         " && ['done', 'stopped', 'error', 'busy'].includes(r.type))")
# Something else has taken the tab's memory: the wasm heap (at most 4 GiB) is claimed until
# less than `margin` bytes are left to grow into (malloc'd, not written: fast).
FILL_WASM_HEAP = """(margin) => {
  const wasm = window.dreamframe.tf.backend().wasm;
  const heap = () => wasm.HEAPU8.buffer.byteLength;
  for (const chunk of [256 * 2 ** 20, 16 * 2 ** 20, 2 ** 20]) {
    while (heap() + margin < 2 ** 32 && wasm._malloc(chunk)) { /* claimed */ }
  }
  return 2 ** 32 - heap();
}"""


@pytest.fixture(scope="module")
def blog(module_context, site_url, photos, tmp_path_factory):
    """A blog on another origin embedding the page (and another widget), ready to send."""
    host = tmp_path_factory.mktemp("blog")
    (host / "index.html").write_text(
        EMBED_HOST.format(src=site_url + "index.html?embed&backend=wasm"))
    (host / "host.js").write_text(EMBED_SCRIPT)
    (host / "other.html").write_text(OTHER_PAGE)
    (host / "other.js").write_text(OTHER_SCRIPT)
    for name, path in photos.items():
        (host / name).write_bytes(path.read_bytes())
    server, url = serve(host)
    with watched_page(module_context) as page:
        page.goto(url + "index.html")
        page.wait_for_function("() => window.replies.some((r) => r.type === 'ready')",
                               timeout=90_000)
        page.dreamframe = next(f for f in page.frames if "embed" in f.url)
        yield page
    server.shutdown()


def replies(page, request_id: str) -> list:
    return [r for r in page.evaluate("window.replies") if r.get("id") == request_id]


def test_messages_from_another_window_than_the_parent_are_ignored(blog):
    page = blog
    # The other widget's stop, sent as soon as the parent's dream has taken its first step.
    page.evaluate("""() => { window.onReply = (reply) => {
      if (reply.id === 'real' && reply.type === 'progress' && reply.done === 1) {
        document.getElementById('other').contentWindow.post({ type: 'stop' }); } }; }""")
    page.evaluate("send([{ from: 'other', type: 'dream', id: 'foreign', image: 'photo.png' },"
                  " { type: 'dream', id: 'real', image: 'photo.png',"
                  "   settings: { octaves: 1, steps: 4 } }])")
    page.wait_for_function(FINAL, arg="real", timeout=60_000)
    page.evaluate("window.onReply = null")
    assert [r["type"] for r in replies(page, "real")] == ["progress"] * 4 + ["done"]
    assert replies(page, "foreign") == []
    assert page.console_errors == []


def test_a_zoom_reply_names_its_videos_format(blog):
    """An MP4 where the browser encodes H.264 (this Chromium does), else a WebM, else (no
    WebCodecs) a GIF: the reply's `format` and the Blob's type say which, and it decodes."""
    page = blog
    for request, expected in (("video", ("mp4", "webm")), ("gif", ("gif",))):
        if request == "gif":  # a browser without WebCodecs: the page makes a GIF instead
            page.dreamframe.evaluate("delete window.VideoEncoder")
        page.evaluate("(id) => send([{ type: 'zoom', id, image: 'photo.png', "
                      "settings: { zoom_frames: 2, zoom_steps: 1 } }])", request)
        page.wait_for_function(FINAL, arg=request, timeout=60_000)
        done = replies(page, request)[-1]
        assert (done["type"], done["frames"]) == ("done", 2) and done["format"] in expected
        video = base64.b64decode(done["video"]["b64"])
        if request == "video":
            import av

            assert done["video"]["type"] == "video/" + done["format"]
            # An MP4 starts with its `ftyp` box; a WebM with EBML's magic number.
            assert video[4:8] == b"ftyp" if done["format"] == "mp4" else video[:4] == b"\x1a\x45\xdf\xa3"
            with av.open(io.BytesIO(video)) as container:
                assert len(list(container.decode(video=0))) == 2
        else:
            assert done["video"]["type"] == "image/gif" and video[:4] == b"GIF8"
            assert Image.open(io.BytesIO(video)).n_frames == 2
    assert page.console_errors == []


def test_a_guide_blob_in_a_dream_request_guides_the_dream(blog):
    page = blog
    settings = {"octaves": 1, "steps": 2}
    page.evaluate("(settings) => send([{ type: 'dream', id: 'guided', image: 'photo.png', "
                  "guide: 'guide.png', settings }])", settings)
    page.wait_for_function(FINAL, arg="guided", timeout=60_000)
    done = replies(page, "guided")[-1]
    assert done["type"] == "done" and done["image"]["type"] == "image/png"
    frame = page.dreamframe
    assert frame.evaluate("document.getElementById('guide-note').textContent") == (
        "Guide 64×48 px: the next dream follows it.")
    png = Image.open(io.BytesIO(base64.b64decode(done["image"]["b64"])))
    dreamt = np.asarray(png.convert("RGB"), dtype=np.float64)
    assert difference(dreamt, pixels(frame.evaluate(REFERENCE, [settings, True]))) == 0
    assert difference(dreamt, pixels(frame.evaluate(REFERENCE, [settings, False]))) > 0.5
    assert page.console_errors == []


def test_the_embedding_page_hears_of_running_out_of_memory(blog):
    """As tests/test_reliability.py provokes it, in the embedded page: its wasm heap is
    nearly all taken, so the first try fails; the retry runs on a fresh heap."""
    page = blog
    assert page.dreamframe.evaluate(FILL_WASM_HEAP, 40e6) <= 40e6
    page.evaluate("send([{ type: 'dream', id: 'oom', image: 'large.png', "
                  "settings: { octaves: 1, steps: 1, tile_size: 256 } }])")
    page.wait_for_function(FINAL, arg="oom", timeout=120_000)
    got = replies(page, "oom")
    notices = [r["notice"] for r in got if r["type"] == "progress" and "notice" in r]
    assert notices == ["out of memory on WebAssembly: dreaming again with tiles of 128 px"]
    assert (got[-1]["type"], got[-1]["width"], got[-1]["height"]) == ("done", 256, 256)
    assert page.console_errors == []


# --- WebGPU that computes nothing --------------------------------------------------------------

# Breaks the input gradient of every convolution on WebGPU: the kernel runs, then its answer
# is replaced by zeros, as a faulty driver might (tests/test_gpu_backends.py does the same
# to WebGL).
BREAK_WEBGPU = """() => {
  const tf = window.dreamframe.tf;
  const name = 'Conv2DBackpropInput', backend = 'webgpu';
  const original = tf.getKernel(name, backend);
  tf.unregisterKernel(name, backend);
  tf.registerKernel({ kernelName: name, backendName: backend, kernelFunc: (args) => {
    const out = original.kernelFunc(args);
    const zeros = new Float32Array(out.shape.reduce((a, b) => a * b, 1));
    const broken = args.backend.makeTensorInfo(out.shape, out.dtype, zeros);
    args.backend.disposeData(out.dataId);
    return broken;
  } });
}"""


def test_webgpu_computing_nothing_is_replaced_by_webgl(gpu_module_context, site_url, photos):
    """Software WebGPU and WebGL here: one layer and one step of a small photo keeps it short
    (most of the time is compiling shaders)."""
    with watched_page(gpu_module_context) as page:
        page.goto(site_url + "index.html?backend=webgpu&prepare=off&octaves=1&steps=1"
                  "&layers=brush%20strokes:1")
        page.wait_for_function(READY, timeout=120_000)
        assert page.evaluate("window.dreamframe.tf.getBackend()") == "webgpu"
        page.evaluate(BREAK_WEBGPU)
        page.set_input_files("#file", str(photos["photo.png"]))
        page.wait_for_function(f"() => {STATUS}.startsWith('Photo loaded')")
        page.click("#start")
        page.wait_for_function(f"() => {STATUS}.includes('Done')", timeout=300_000)
        assert page.inner_text("#status").startswith(
            "The WebGPU backend returned no gradient on this device. Switched to WebGL. "
            "Done on WebGL in ")
        assert page.evaluate("window.dreamframe.tf.getBackend()") == "webgl"
        assert page.text_content("#backend").startswith("Running on WebGL")
        assert page.evaluate("sessionStorage.getItem('dreamframe:broken-backends')") == (
            '["webgpu"]')
        assert difference(canvas(page, "after"), canvas(page, "before")) > 0
        assert page.console_errors == []
