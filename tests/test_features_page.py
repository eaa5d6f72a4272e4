"""Dream zoom videos, guided dreams and the channel explorer in the page (issue 13).

The engine behind them is tested natively (test_zoom_native.py, test_guide_native.py); here
the page: a zoom made and encoded in the browser and decoded back here, Stop keeping the
frames, memory flat over many frames, a guide image moving the dream's features toward its
own, and the explorer rendering a layer's channels and dreaming with the one clicked.
"""

import base64
import io

import numpy as np
import pytest
from conftest import READY, bounded, serve
from PIL import Image

# A blog that embeds the page and asks it for a zoom; every reply is kept, a video as base64.
HOST = """<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<iframe id="f" src="{src}" width="800" height="700"></iframe>
<script>
  window.replies = [];
  addEventListener('message', async (event) => {{
    if (!event.data || event.data.source !== 'dreamframe') return;
    const {{ video, image, ...rest }} = event.data;
    if (video) {{
      const bytes = new Uint8Array(await video.arrayBuffer());
      let text = ''; for (let i = 0; i < bytes.length; i += 0x8000) {{
        text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)); }}
      rest.video = btoa(text); rest.type_ = video.type;
    }}
    window.replies.push(rest);
  }});
  window.ask = async (message) => {{
    const image = await (await fetch('photo.png')).blob();
    document.getElementById('f').contentWindow.postMessage({{ ...message, image }}, '*');
  }};
</script>"""


@pytest.fixture
def host(tmp_path, site_url):
    """A host page on another origin embedding the page; yields (url, folder)."""
    from skimage import data

    folder = tmp_path / "blog"
    folder.mkdir()
    Image.fromarray(data.chelsea()).resize((96, 64), Image.LANCZOS).save(folder / "photo.png")

    def make(query: str) -> str:
        (folder / "index.html").write_text(HOST.format(src=site_url + "index.html?embed&" + query))
        return url + "index.html"

    server, url = serve(folder)
    yield make
    server.shutdown()


def frames_of(b64: str, kind: str) -> list:
    """The frames of an MP4 or WebM (PyAV) or GIF (PIL) as uint8 arrays."""
    raw = base64.b64decode(b64)
    if kind == "image/gif":
        gif = Image.open(io.BytesIO(raw))
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB")))
        return frames
    import av

    with av.open(io.BytesIO(raw)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.mark.parametrize("encoder", ["video", "gif"])
def test_a_twelve_frame_zoom_becomes_a_video_of_twelve_different_frames(page, host, encoder):
    if encoder == "gif":  # a browser without WebCodecs: the page falls back to a GIF
        page.add_init_script("delete window.VideoEncoder")
    page.goto(host("backend=wasm"))
    page.wait_for_function("() => window.replies.some((r) => r.type === 'ready')",
                           timeout=120_000)
    page.evaluate("window.ask({type: 'zoom', id: 'z1', settings: {zoom_frames: 12, "
                  "zoom_steps: 2, zoom: 1.1}})")
    page.wait_for_function("() => window.replies.some((r) => r.type === 'done')",
                           timeout=300_000)
    replies = page.evaluate("window.replies")
    done = [r for r in replies if r["type"] == "done"]
    assert len(done) == 1 and done[0]["id"] == "z1" and done[0]["frames"] == 12
    assert [r["frame"] for r in replies if r["type"] == "progress"] == list(range(1, 13))
    # A video in whatever format this browser encodes (web/js/video.js: MP4 where it encodes
    # H.264, as this Chromium does, else WebM), named in the reply.
    kind = done[0]["type_"]
    assert kind == {"video": f"video/{done[0]['format']}", "gif": "image/gif"}[encoder]
    assert kind in ("video/mp4", "video/webm", "image/gif")
    frames = frames_of(done[0]["video"], kind)
    assert len(frames) == 12
    assert {f.shape for f in frames} == {(64, 96, 3)}
    changes = [np.abs(a.astype(float) - b).mean() for a, b in zip(frames, frames[1:], strict=False)]
    assert min(changes) > 1.0, changes  # each frame zooms and dreams: none repeats the last


def test_stop_keeps_the_frames_made_so_far(page, host):
    page.goto(host("backend=wasm"))
    page.wait_for_function("() => window.replies.some((r) => r.type === 'ready')",
                           timeout=120_000)
    page.evaluate("window.ask({type: 'zoom', settings: {zoom_frames: 200, zoom_steps: 1}})")
    page.wait_for_function("() => window.replies.filter((r) => r.type === 'progress')"
                           ".length >= 3", timeout=120_000)
    page.evaluate("document.getElementById('f').contentWindow.postMessage({type: 'stop'}, '*')")
    page.wait_for_function("() => window.replies.some((r) => r.type === 'stopped')",
                           timeout=120_000)
    replies = page.evaluate("window.replies")
    stopped = [r for r in replies if r["type"] == "stopped"]
    assert len(stopped) == 1 and not any(r["type"] == "done" for r in replies)
    made = stopped[0]["frames"]
    assert 3 <= made < 200
    assert len(frames_of(stopped[0]["video"], stopped[0]["type_"])) == made


def test_memory_stays_flat_over_fifty_frames(page, site_url):
    page.goto(site_url + "index.html?backend=wasm")
    page.wait_for_function(READY, timeout=120_000)
    counts = bounded(page, 240, "a zoom of fifty frames", """async () => {
      const { tf, engine } = window.dreamframe;
      const image = tf.randomUniform([1, 64, 64, 3], -1, 1, 'float32', 3);
      const before = tf.memory().numTensors;
      const counts = [];
      const made = await engine.zoom(image, JSON.stringify({ zoom_frames: 50, zoom_steps: 1 }),
                                     () => { counts.push(tf.memory().numTensors); });
      image.dispose();
      return { made, counts, before, after: tf.memory().numTensors + 1 };
    }""")
    assert counts["made"] == 50
    assert len(set(counts["counts"][1:])) == 1, counts["counts"]  # the same every frame
    assert counts["after"] == counts["before"]  # and nothing left once it is over


def features_near_guide(ops, pixels: np.ndarray, guide: np.ndarray, layer: str) -> float:
    """Mean over the result's positions of the best cosine to any of the guide's features."""
    from native import tf_backend

    x = np.asarray(ops.activations(tf_backend.to_tensor(pixels), [layer])[0])[0]
    g = np.asarray(ops.activations(tf_backend.to_tensor(guide), [layer])[0])[0]
    x = x.reshape(-1, x.shape[-1])
    g = g.reshape(-1, g.shape[-1])
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)
    g = g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-8)
    return float((x @ g.T).max(axis=1).mean())


def test_a_guide_image_moves_the_dreams_features_toward_its_own(page, site_url, site,
                                                               native_backend):
    from skimage import data

    Image.fromarray(data.chelsea()).resize((192, 128), Image.LANCZOS).save(site / "g-photo.png")
    Image.fromarray(data.coffee()).resize((192, 128), Image.LANCZOS).save(site / "g-guide.png")
    page.goto(site_url + "index.html?backend=wasm")
    page.wait_for_function(READY, timeout=120_000)
    results = bounded(page, 180, "a plain and a guided dream", """async () => {
      const { tf, engine } = window.dreamframe;
      const load = async (url) => { const img = new Image(); img.src = url; await img.decode();
        return window.dreamframe.images.toTensor(tf, img); };
      const photo = await load('g-photo.png'), guide = await load('g-guide.png');
      const options = JSON.stringify({ octaves: 2, steps: 6, seed: 1, guide_mix: 1 });
      const out = {};
      for (const [name, g] of [['plain', null], ['guided', guide]]) {
        const result = await engine.dream(photo, options, null, g);
        const pixels = tf.tidy(() => result.add(1).mul(127.5).round().clipByValue(0, 255)
                                           .toInt());
        out[name] = Array.from(await pixels.data());
        pixels.dispose(); result.dispose();
      }
      photo.dispose(); guide.dispose();
      return out;
    }""")
    guide = np.asarray(Image.open(site / "g-guide.png"))
    layer = "block_12_expand_relu"  # the guide's default layer (presets.GUIDE)
    plain, guided = (np.asarray(results[k], dtype=np.uint8).reshape(128, 192, 3)
                     for k in ("plain", "guided"))
    ops = native_backend()[0]
    near_plain = features_near_guide(ops, plain, guide, layer)
    near_guided = features_near_guide(ops, guided, guide, layer)
    assert near_guided > near_plain + 0.02, (near_plain, near_guided)


def test_the_channel_explorer_shows_a_layers_channels_and_dreams_the_one_clicked(page,
                                                                              site_url):
    page.goto(site_url + "index.html?backend=wasm&sample=chelsea&octaves=1&steps=2")
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".startsWith('Photo')", timeout=120_000)
    page.click("#channel-box summary")
    page.select_option("#channel-layer", "block_5_expand_relu")
    count = page.locator("#channel-grid button").count()
    assert count == 192  # one per channel of block_5_expand_relu
    # What is in view renders by itself, what is further down waits until scrolled to. A
    # rendered thumbnail is opaque; a dreamt feature is far from the grey it began as (a
    # channel that never fires on grey is drawn grey and labelled "silent").
    state = """() => { const grid = document.getElementById('channel-grid').getBoundingClientRect();
      return [...document.querySelectorAll('#channel-grid button')].map((b) => {
        const r = b.getBoundingClientRect(), c = b.querySelector('canvas');
        const d = c.getContext('2d').getImageData(0, 0, 96, 96).data;
        let spread = 0; for (let i = 0; i < d.length; i += 4) spread += Math.abs(d[i] - 128);
        return { visible: r.bottom > grid.top && r.top < grid.bottom, drawn: d[3] === 255,
                 silent: b.textContent.includes('silent'), spread: spread / (d.length / 4) };
      }); }"""
    page.wait_for_function(f"() => ({state})().filter((t) => t.visible).every((t) => t.drawn)",
                           timeout=180_000)
    first = page.evaluate(state)
    assert sum(t["drawn"] for t in first) >= 3
    assert not any(t["drawn"] for t in first[60:])  # not in view: not rendered yet
    dreamt = [t["spread"] for t in first if t["drawn"] and not t["silent"]]
    assert dreamt and min(dreamt) > 8, dreamt
    page.evaluate("document.getElementById('channel-grid').scrollTop = 100000")
    page.wait_for_function(f"() => ({state})().slice(-3).every((t) => t.drawn)",
                           timeout=180_000)
    page.evaluate("document.getElementById('channel-grid').scrollTop = 0")
    page.click("#channel-grid button[data-index='3']")
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".startsWith('Done')", timeout=180_000)
    assert "channel=block_5_expand_relu%3A3" in page.url
