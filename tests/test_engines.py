"""Smoke tests in the two other engines a visitor has: Firefox and WebKit (Safari's engine).

Chromium runs the whole suite through Playwright; here Debian's firefox-esr is driven through
Marionette (PyPI's marionette-driver) and WebKitGTK's MiniBrowser through WebKitWebDriver
(Selenium) under Xvfb, both installed by scripts/setup.sh. Neither driver reports the
console, so the page records what went wrong itself (web/js/errors.js). In each engine: the
page loads without an error, the default dream completes and changes the photo, the PNG
download has the photo's size, a zoom video comes out in whatever format the engine makes
(the page says which and why), the model switch works, and an embedding page on another
origin gets a dream back.
"""

import json
from pathlib import Path

import pytest
from conftest import serve

from scripts.engines import CHANGE, ENGINES

BACKEND = "return document.getElementById('backend').textContent"
# Every download the page starts (an <a download> clicked) is caught instead of saved: its
# file name, type, size in bytes and, for an image, its width and height, as JSON on
# document.body's data-saved.
CATCH_DOWNLOADS = """HTMLAnchorElement.prototype.click = function () {
  const name = this.download;
  fetch(this.href).then((r) => r.blob()).then(async (blob) => {
    const out = { name, type: blob.type, bytes: blob.size };
    if (blob.type.startsWith('image/')) {
      const bitmap = await createImageBitmap(blob);
      out.width = bitmap.width; out.height = bitmap.height;
    }
    document.body.dataset.saved = JSON.stringify(out);
  });
};"""
EMBED_HOST = """<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<iframe id="dream" src="{src}" width="600" height="500" title="Dreamframe"></iframe>
<pre id="result"></pre><script src="host.js"></script>"""
# The blog's side: on `ready`, a dream request with the photo; the reply, its PNG decoded,
# written into #result.
EMBED_SCRIPT = """const result = document.getElementById('result');
addEventListener('message', async (event) => {
  const data = event.data;
  if (!data || data.source !== 'dreamframe') return;
  if (data.type === 'ready') {
    const image = await (await fetch('chelsea.jpg')).blob();
    document.getElementById('dream').contentWindow.postMessage(
      { type: 'dream', id: 'smoke', image, settings: { octaves: 1, steps: 2 } }, '*');
  } else if (['done', 'error', 'stopped'].includes(data.type)) {
    const out = { type: data.type, id: data.id, message: data.message,
                  width: data.width, height: data.height };
    if (data.image) {
      const bitmap = await createImageBitmap(data.image);
      out.png = [bitmap.width, bitmap.height, data.image.type];
    }
    result.textContent = JSON.stringify(out);
  }
});"""



@pytest.fixture(scope="module", params=sorted(ENGINES))
def engine(request, site_url):
    """The engine, on the page with the chelsea sample dreamt by default (autostart)."""
    with ENGINES[request.param]() as engine:
        engine.goto(site_url + "index.html?sample=chelsea&autostart")
        yield engine


def test_the_default_dream_completes_and_changes_the_photo(engine):
    engine.wait("return document.getElementById('status').textContent.startsWith('Done')",
                240, "finished dream")
    change, width, height = engine.run(CHANGE)
    assert (width, height) == (451, 300)
    assert change > 3, f"{engine.name}: the dream is {change:.2f}/255 from the photo"
    engine.assert_no_errors()


def test_the_device_line_says_what_dreams_and_why(engine):
    line = engine.run(BACKEND)
    # Headless Firefox has no WebGL; WebKit's GPU is measured (its name is masked), and
    # WebKitGTK here is Mesa's software rasteriser, slower than WebAssembly.
    assert line.startswith("Running on WebAssembly"), line
    if engine.name.startswith("WebKit"):
        assert "measured" in line, line


def test_the_png_download_has_the_photos_size(engine):
    engine.in_page(CATCH_DOWNLOADS)
    engine.run("document.getElementById('download').click()")
    saved = json.loads(engine.wait("return document.body.dataset.saved", 30, "download"))
    assert saved["type"] == "image/png" and saved["name"] == "chelsea-dream.png"
    assert (saved["width"], saved["height"]) == (451, 300)
    engine.assert_no_errors()


def test_a_zoom_video_in_the_format_this_engine_makes(engine):
    engine.in_page(CATCH_DOWNLOADS)
    engine.run("""document.body.dataset.saved = '';
      for (const [id, v] of [['zoom_frames', '3'], ['zoom_steps', '1']]) {
        document.getElementById(id).value = v; }
      document.getElementById('zoom-start').click();""")
    status = engine.wait("const s = document.getElementById('status').textContent;"
                         "return s.startsWith('Done: ') && s", 240, "zoom video")
    assert status.startswith("Done: 3 frames"), status
    made = next((kind for kind in ("mp4", "webm") if f"as {kind.upper()}." in status), "gif")
    if engine.name.startswith("WebKit"):  # its encoder crashes the page (web/js/video.js)
        assert "as GIF (WebKitGTK's video encoder crashes the page)" in status, status
    else:  # Firefox ESR here encodes H.264 (an MP4); elsewhere a WebM or GIF may be made
        assert made != "gif" or "as GIF (this browser encodes neither H.264 nor VP9 video)" \
            in status, status
    engine.run("document.getElementById('zoom-download').click()")
    saved = json.loads(engine.wait("return document.body.dataset.saved", 30, "download"))
    assert saved["type"] == ("image/gif" if made == "gif" else "video/" + made), saved
    assert saved["name"] == "chelsea-zoom." + made, saved
    assert saved["bytes"] > 1000
    engine.assert_no_errors()


def test_the_model_switch(engine):
    engine.run("""const select = document.getElementById('model');
      select.value = 'inception_v3'; select.dispatchEvent(new Event('change'));""")
    status = engine.wait("const s = document.getElementById('status').textContent;"
                         "return (s.startsWith('Model ready') || s.startsWith('Could not')) && s",
                         120, "model switch")
    assert status.startswith("Model ready"), status
    assert engine.run("return Boolean(document.getElementById('w-mixed3'))")
    engine.assert_no_errors()


@pytest.fixture(scope="module")
def blog(site_url, tmp_path_factory):
    """A blog on another origin (another port) embedding the page."""
    host = tmp_path_factory.mktemp("engine-blog")
    (host / "index.html").write_text(EMBED_HOST.format(src=site_url + "index.html?embed"))
    (host / "host.js").write_text(EMBED_SCRIPT)
    (host / "chelsea.jpg").write_bytes(
        (Path(__file__).resolve().parent.parent / "web/samples/chelsea.jpg").read_bytes())
    server, url = serve(host)
    yield url
    server.shutdown()


def test_an_embedding_page_on_another_origin_gets_a_dream_back(engine, blog):
    engine.goto(blog + "index.html")
    result = json.loads(engine.wait("return document.getElementById('result').textContent",
                                    180, "reply to the embedding page"))
    assert result["type"] == "done" and result["id"] == "smoke", result
    assert result["png"] == [451, 300, "image/png"]
