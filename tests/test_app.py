"""The page as a visitor and an embedding blog use it: the built site on a plain static server."""

import io
import re
from urllib.parse import urlparse

import numpy as np
import pytest
from conftest import canvas_change, serve
from PIL import Image

READY = "() => window.dreamframe && window.dreamframe.engine && document.getElementById('start')"
LOADED = "() => document.getElementById('note').textContent.includes('px')"
DONE = "() => document.getElementById('status').textContent.startsWith('Done')"


def same_origin_only(page, site_url) -> None:
    origin = urlparse(site_url).netloc
    foreign = [u for u in page.requests
               if not u.startswith(("data:", "blob:")) and urlparse(u).netloc != origin]
    assert foreign == []


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """Three distinguishable real photos (sizes tell them apart) as files on disk."""
    from skimage import data

    root = tmp_path_factory.mktemp("images")
    files = {}
    for name, pixels, size in (("upload", data.coffee(), (240, 160)),
                               ("drop", data.astronaut(), (200, 200)),
                               ("paste", data.chelsea(), (180, 120))):
        path = root / f"{name}.png"
        Image.fromarray(pixels).resize(size).save(path)
        files[name] = path
    return files


def test_default_dream_of_a_sample_shows_progress_and_downloads_a_png(page, site_url):
    page.goto(site_url + "index.html?backend=wasm&sample=chelsea")
    page.wait_for_function(LOADED, timeout=90_000)
    assert page.locator("#note").inner_text().startswith("451×300 px")
    assert "Running on WebAssembly" in page.locator("#backend").text_content()  # the details
    assert page.locator("#device").inner_text() == "Your CPU (WebAssembly)"  # what one sees

    page.click("#start")
    page.wait_for_function("() => document.getElementById('progress-text').textContent"
                           ".startsWith('Octave 2/4')", timeout=120_000)
    assert "s left" in page.locator("#progress-text").inner_text()
    page.wait_for_function(DONE, timeout=300_000)
    assert page.evaluate("document.getElementById('progress').value") == 1
    # One line says it is done (and how long it took); the note describes the dream now.
    assert re.match(r"Done in \d+ s\. Slide to compare", page.inner_text("#status"))
    assert page.inner_text("#progress-text") == ""
    assert page.inner_text("#note") == (
        "The dream, 451×300 px: slide to compare it with your photo.")
    assert canvas_change(page) > 5  # a visible dream (docs/engine.md: about 13/255 natively)

    with page.expect_download() as download:
        page.click("#download")
    png = Image.open(io.BytesIO(open(download.value.path(), "rb").read()))
    assert png.format == "PNG" and png.size == (451, 300)
    assert download.value.suggested_filename == "chelsea-dream.png"
    same_origin_only(page, site_url)


def test_upload_drag_and_drop_and_paste_each_bring_an_image_in(page, site_url, image_files):
    page.goto(site_url + "index.html?backend=wasm")
    page.wait_for_function(READY, timeout=90_000)
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Ready')")

    page.set_input_files("#file", str(image_files["upload"]))
    page.wait_for_function("() => document.getElementById('note').textContent.startsWith('240×160')")

    for kind, size in (("drop", "200×200"), ("paste", "180×120")):
        data = list(image_files[kind].read_bytes())
        page.evaluate("""([kind, bytes]) => {
          const file = new File([new Uint8Array(bytes)], kind + '.png', { type: 'image/png' });
          const transfer = new DataTransfer();
          transfer.items.add(file);
          if (kind === 'drop') {
            const zone = document.getElementById('drop-zone');
            zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true,
                                                           cancelable: true }));
            zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true,
                                                       cancelable: true }));
          } else {
            document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer,
                                                                 bubbles: true }));
          }
        }""", [kind, data])
        page.wait_for_function(f"() => document.getElementById('note').textContent"
                               f".startsWith('{size}')")
        assert not page.locator("#start").is_disabled()


def test_stop_stops_within_one_step(page, site_url):
    page.goto(site_url + "index.html?backend=wasm&sample=coffee&steps=20&octaves=2")
    page.wait_for_function(LOADED, timeout=90_000)
    page.click("#start")
    page.wait_for_function("() => document.getElementById('progress').value >= 3 / 40", timeout=120_000)
    at_click = page.evaluate("""() => {
      const value = document.getElementById('progress').value;
      document.getElementById('stop').click();   // same task: no step can finish in between
      return value;
    }""")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Stopped')",
                           timeout=60_000)
    after = page.evaluate("document.getElementById('progress').value")
    assert round((after - at_click) * 40) <= 1
    assert not page.locator("#start").is_disabled()
    assert page.locator("#stop").is_disabled()


def test_url_settings_apply(page, site_url):
    page.goto(site_url + "index.html?backend=wasm&preset=deep&octaves=3&steps=7&seed=42"
              "&step_size=0.05&layers=textures:1.5,block_12_expand_relu:0.5")
    page.wait_for_function(READY, timeout=90_000)
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Ready')")
    values = page.evaluate("""() => Object.fromEntries(
      ['preset', 'octaves', 'steps', 'seed', 'step_size', 'jitter',
       'w-block_5_expand_relu', 'w-block_12_expand_relu', 'w-block_15_expand_relu']
        .map((id) => [id, document.getElementById(id).value]))""")
    assert values == {"preset": "deep", "octaves": "3", "steps": "7", "seed": "42",
                      "step_size": "0.05", "jitter": "32", "w-block_5_expand_relu": "1.5",
                      "w-block_12_expand_relu": "0.5", "w-block_15_expand_relu": "0"}


def test_hostile_url_values_are_clamped_or_ignored_and_never_become_html(page, site_url):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    payload = "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"
    page.goto(site_url + f"index.html?backend=wasm&octaves={payload}&steps=1e9&seed=-5"
              f"&layers={payload}:1&sample=..%2F..%2Fetc%2Fpasswd&preset=__proto__"
              f"&step_size=NaN&jitter=Infinity&embed=%3Cb%3E&interpreter={payload}")
    page.wait_for_function(READY, timeout=90_000)
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Ready')")
    values = page.evaluate("""() => Object.fromEntries(
      ['preset', 'octaves', 'steps', 'seed', 'step_size', 'jitter']
        .map((id) => [id, document.getElementById(id).value]))""")
    assert values == {"preset": "default", "octaves": "4", "steps": "50", "seed": "0",
                      "step_size": "0.02", "jitter": "32"}
    assert page.locator("img").count() == 0
    assert "onerror" not in page.content()
    assert dialogs == []
    same_origin_only(page, site_url)


HOST_PAGE = """<!doctype html><meta charset="utf-8"><title>A blog</title>
<link rel="icon" href="data:,">
<p>My blog post, with a dream in it:</p>
<iframe id="dream" src="{src}" width="800" height="700"
  sandbox="allow-scripts allow-same-origin allow-downloads" allow="clipboard-read; clipboard-write"
  title="Dreamframe"></iframe>
<script>
  window.received = [];
  window.addEventListener('message', async (event) => {{
    const message = event.data;
    if (!message || message.source !== 'dreamframe') return;
    window.received.push(message.type);
    if (message.type === 'ready') {{
      const blob = await (await fetch('photo.png')).blob();
      document.getElementById('dream').contentWindow.postMessage(
        {{ type: 'dream', image: blob, settings: {{ octaves: 1, steps: 2, seed: 3 }} }}, '*');
    }}
    if (message.type === 'done') {{
      const image = message.image;
      window.done = {{ width: message.width, height: message.height, kind: image.type,
                       isBlob: image instanceof Blob,
                       bytes: Array.from(new Uint8Array(await image.arrayBuffer())) }};
    }}
  }});
</script>"""


def test_a_blog_embeds_the_page_sends_an_image_and_gets_the_dream_back(
        module_context, site_url, tmp_path, image_files):
    from conftest import watched_page

    host_dir = tmp_path / "blog"
    host_dir.mkdir()
    (host_dir / "photo.png").write_bytes(image_files["upload"].read_bytes())
    (host_dir / "index.html").write_text(
        HOST_PAGE.format(src=site_url + "index.html?embed&backend=wasm"))
    server, host_url = serve(host_dir)  # another port: another origin
    try:
        with watched_page(module_context) as page:
            page.goto(host_url + "index.html")
            page.wait_for_function("() => window.done !== undefined", timeout=120_000)
            done = page.evaluate("window.done")
            received = page.evaluate("window.received")
            assert received[0] == "ready" and "progress" in received and received[-1] == "done"
            assert page.frame_locator("#dream").locator("body.embed").count() == 1
    finally:
        server.shutdown()
    # The reply's image is a real PNG of the photo's size, and a dream of it, not the photo.
    assert (done["width"], done["height"], done["kind"], done["isBlob"]) == (
        240, 160, "image/png", True)
    png = Image.open(io.BytesIO(bytes(done["bytes"])))
    assert png.format == "PNG" and png.size == (240, 160)
    dream = np.asarray(png.convert("RGB"), dtype=np.float64)
    photo = np.asarray(Image.open(image_files["upload"]).convert("RGB"), dtype=np.float64)
    change = np.abs(dream - photo).mean()
    assert change > 1.0, f"mean change {change:.2f}/255"  # two steps: about 2-3/255


def tab_to(page, selector: str, presses: int = 40) -> list:
    """Press Tab until `selector` has the focus; returns what had it on the way there."""
    path = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        path.append(page.evaluate("""() => { const e = document.activeElement;
          return e.id || e.getAttribute('data-sample') || e.tagName.toLowerCase(); }"""))
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return path
    raise AssertionError(f"Tab never reached {selector}; focus went {path}")


def test_the_page_works_by_keyboard_alone(page, site_url, image_files):
    page.goto(site_url + "index.html?backend=wasm&octaves=1&steps=1")
    page.wait_for_function(READY, timeout=90_000)
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Ready')")
    # Playwright turns on its interception of file choosers when one is first awaited, after
    # the key press has been sent: a chooser opened meanwhile is missed (seen here). Listening
    # from the start turns it on before any key is pressed.
    page.on("filechooser", lambda chooser: None)
    # The image area comes first; Enter and Space on it open the file chooser.
    assert tab_to(page, "#drop-zone") == ["drop-zone"]
    for key, name in (("Enter", "upload"), ("Space", "drop")):
        with page.expect_file_chooser(timeout=5_000) as chooser:
            page.keyboard.press(key)
        chooser.value.set_files(str(image_files[name]))
        size = "240×160" if name == "upload" else "200×200"
        page.wait_for_function(f"() => document.getElementById('note').textContent"
                               f".startsWith('{size}')")
        assert page.evaluate("document.activeElement.id") == "drop-zone"
    # Tab reaches the file picker and a sample; Space on the sample loads it.
    path = tab_to(page, "[data-sample=coffee]")
    assert "file" in path and path[-2:] == ["chelsea", "coffee"], path
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('note').textContent.startsWith('600×400')")
    # On through the style to the Dream button; Enter dreams.
    path = tab_to(page, "#start")
    assert "preset" in path, path
    page.keyboard.press("Enter")
    page.wait_for_function(DONE, timeout=60_000)
    # The result's controls are reachable too: the compare slider moves with the arrow keys.
    tab_to(page, "#compare-slider")
    page.keyboard.press("Home")
    assert page.evaluate("document.getElementById('compare').style.getPropertyValue('--reveal')") == "0%"


# Most controls a visitor taps on a phone, and the smallest height that a finger hits
# reliably: Apple asks for 44 pt, Material for 48 dp; 40 CSS px leaves a little slack.
TAP_TARGETS = ("#drop-zone, label.button, [data-sample], #preset, #advanced summary, "
               "#start, #stop, #download, #again, #compare-slider, .grid input, .layers input")
TAP_HEIGHT = 40


def test_the_page_fits_a_phone_screen_with_finger_sized_controls(browser, site_url):
    from conftest import open_page

    with open_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True,
                   has_touch=True) as page:
        page.goto(site_url + "index.html?backend=wasm&sample=coffee")
        page.wait_for_function(LOADED, timeout=90_000)
        page.evaluate("document.getElementById('advanced').open = true")  # all controls shown
        boxes = page.evaluate("""(selector) => [...document.querySelectorAll(
            'input:not([type=file]), select, button, label.button, summary, canvas, progress, '
            + '#drop-zone')].map((e) => {
          const r = e.getBoundingClientRect();
          return { name: e.id || e.getAttribute('data-sample') || e.textContent.trim(),
                   left: r.left, right: r.right, width: r.width, height: r.height,
                   tap: e.matches(selector) };
        })""", TAP_TARGETS)
        # No sideways scrolling: the page, and every control on it, within the screen's width.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        outside = [b["name"] for b in boxes if b["left"] < 0 or b["right"] > 390]
        assert outside == []
        # The photo and the Dream button on the first screen together, without scrolling
        # (Dream sits in a bar at the foot of the screen), the photo nearly the screen's
        # width and not hidden under the bar; Dream takes a tap there (nothing covers it).
        by_name = {b["name"]: b for b in boxes}
        assert by_name["after"]["width"] >= 300 and by_name["after"]["height"] >= 150
        assert by_name["start"]["width"] >= 40
        assert page.evaluate("window.scrollY") == 0
        photo, bar = page.evaluate("""() => ['after', 'start'].map((id) => {
          const r = document.getElementById(id).getBoundingClientRect();
          return { top: r.top, bottom: r.bottom }; })""")
        assert 0 <= bar["top"] and bar["bottom"] <= 844, bar
        assert min(photo["bottom"], bar["top"]) - max(photo["top"], 0) >= 150, (photo, bar)
        page.click("#start", trial=True, timeout=5_000)
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        assert page.locator("#start").is_visible()  # still in reach at the page's foot
        page.click("#start", trial=True, timeout=5_000)
        assert page.evaluate("window.scrollX") == 0
        small = {b["name"]: round(b["height"]) for b in boxes
                 if b["tap"] and b["height"] < TAP_HEIGHT}
        assert small == {}, f"tap targets under {TAP_HEIGHT} px tall: {small}"
        # Every control has a name for screen readers.
        unnamed = page.evaluate("""() => [...document.querySelectorAll('input, select, button')]
          .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !e.textContent.trim()).map((e) => e.id)""")
        assert unnamed == []
