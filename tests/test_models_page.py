"""The second model in the page: fetched only when chosen, and computing what native does."""

import json

import numpy as np
from conftest import READY, bounded, page_step
from PIL import Image


def test_the_classic_model_is_fetched_only_when_chosen_and_dreams(page, site_url):
    page.goto(site_url + "index.html?backend=wasm&sample=chelsea&octaves=1&steps=2")
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".startsWith('Photo')", timeout=120_000)
    labels = page.evaluate("[...document.querySelectorAll('#model option')]"
                           ".map((o) => o.textContent)")
    sizes = {name: json.loads(page.evaluate(f"fetch('models/{name}/manifest.json')"
                                            ".then((r) => r.text())"))["model"]["size_bytes"]
             for name in ("mobilenet_v2", "inception_v3")}
    assert labels == [f"Light (MobileNetV2, {sizes['mobilenet_v2'] / 1e6:.1f} MB)",
                      f"Classic (InceptionV3, {sizes['inception_v3'] / 1e6:.1f} MB)"]
    assert not any("inception_v3/group" in url for url in page.requests)  # not yet
    page.evaluate("""() => { window.progressSeen = false;
      new MutationObserver(() => { if (!document.getElementById('model-progress').hidden)
        window.progressSeen = true; }).observe(document.getElementById('model-progress'),
        { attributes: true }); }""")
    page.select_option("#model", "inception_v3")
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".startsWith('Model ready')", timeout=120_000)
    assert page.evaluate("window.progressSeen")
    assert any("inception_v3/group" in url for url in page.requests)
    assert "model=inception_v3" in page.url
    layers = page.evaluate("[...document.querySelectorAll('#layers label')]"
                           ".map((l) => l.title.split(' ')[0])")
    assert "mixed3" in layers and "block_5_expand_relu" not in layers
    page.click("#start")
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".startsWith('Done')", timeout=240_000)


def test_one_inception_step_in_the_page_matches_native(page, site_url, site, native_backend):
    from skimage import data

    from dreamengine.objective import Objective
    from dreamengine.render import gradient_step
    from dreamengine.transforms import Transforms
    from native import tf_backend

    photo = np.asarray(Image.fromarray(data.coffee()).resize((171, 131), Image.LANCZOS))
    Image.fromarray(photo).save(site / "inception-photo.png")
    weights = {"mixed3": 1.0, "mixed5": 1.0}
    page.goto(site_url + "index.html?backend=wasm&model=inception_v3")
    page.wait_for_function(READY, timeout=120_000)
    options = {"weights": weights, "jitter": 0, "tile_size": 512, "step_size": 0.02}
    got = page_step(page, "inception-photo.png", options, (9, 4))
    ops, _ = native_backend("inception_v3")
    updated, grad, _ = gradient_step(ops, tf_backend.to_tensor(photo), Objective(weights), 0.02,
                                     Transforms(0, 512), (9, 4), (-1.0, 1.0))
    a, b = np.asarray(got["gradient"]), np.asarray(grad).ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) >= 0.999
    image = np.asarray(got["image"], dtype=np.float32).reshape(np.asarray(updated).shape)
    assert np.abs(image - np.asarray(updated)).max() * 127.5 <= 2.0


def test_avg_pool_gradients_at_the_border_match_tensorflow(page, site_url):
    """tfjs's own AvgPoolGrad divides every window by its full size, while 'same' pooling
    divides by the pixels really in it: web/js/gradients.js corrects it (InceptionV3 pools
    so in every block). Checked on both CPU backends against TensorFlow."""
    import tensorflow as tf

    page.goto(site_url + "index.html?backend=wasm")
    page.wait_for_function(READY, timeout=120_000)
    index = np.arange(2 * 9 * 8 * 3)
    x = np.sin(index * 1.7).reshape(2, 9, 8, 3).astype(np.float32)
    w = np.cos(index * 0.9).reshape(2, 9, 8, 3).astype(np.float32)
    got = bounded(page, 60, "AvgPool gradients on wasm and cpu", """async ([x, w, shape]) => {
      const { tf } = window.dreamframe;
      const out = {};
      for (const backend of ['wasm', 'cpu']) {
        await tf.setBackend(backend);
        const xt = tf.tensor(x, shape), wt = tf.tensor(w, shape);
        const g = tf.grad((t) => tf.avgPool(t, 3, 1, 'same').mul(wt).sum())(xt);
        out[backend] = Array.from(await g.data());
        tf.dispose([xt, wt, g]);
      }
      await tf.setBackend('wasm');
      return out;
    }""", [x.ravel().tolist(), w.ravel().tolist(), list(x.shape)])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(tf.nn.avg_pool2d(xt, 3, 1, "SAME") * w)
    want = tape.gradient(loss, xt).numpy().ravel()
    for backend in ("wasm", "cpu"):
        np.testing.assert_allclose(got[backend], want, rtol=1e-5, atol=1e-6, err_msg=backend)


def test_an_embedding_page_picks_the_model_in_its_settings(page, site_url, tmp_path):
    from conftest import serve
    from skimage import data

    host = tmp_path / "blog"
    host.mkdir()
    Image.fromarray(data.chelsea()).resize((96, 64)).save(host / "photo.png")
    (host / "index.html").write_text(f"""<!doctype html><meta charset="utf-8">
<link rel="icon" href="data:,"><iframe id="f" src="{site_url}index.html?embed&backend=wasm"
  width="800" height="700"></iframe><script>
  window.replies = [];
  addEventListener('message', (e) => {{ if (e.data && e.data.source === 'dreamframe') {{
    const {{ image, ...rest }} = e.data; window.replies.push(rest); }} }});
  window.ask = async (settings) => {{
    const image = await (await fetch('photo.png')).blob();
    document.getElementById('f').contentWindow.postMessage(
      {{ type: 'dream', id: 7, image, settings }}, '*'); }};
</script>""")
    server, url = serve(host)
    try:
        page.goto(url + "index.html")
        page.wait_for_function("() => window.replies.some((r) => r.type === 'ready')",
                               timeout=120_000)
        page.evaluate("window.ask({model: 'no_such_model'})")
        page.wait_for_function("() => window.replies.some((r) => r.type === 'error')",
                               timeout=60_000)
        error = [r for r in page.evaluate("window.replies") if r["type"] == "error"][0]
        assert error["id"] == 7 and error["message"] == (
            "unknown model no_such_model; valid models: inception_v3, mobilenet_v2")
        page.evaluate("window.ask({model: 'inception_v3', octaves: 1, steps: 1})")
        page.wait_for_function("() => window.replies.some((r) => r.type === 'done')",
                               timeout=240_000)
        frame = page.frames[1]
        assert frame.evaluate("document.getElementById('model').value") == "inception_v3"
        assert frame.evaluate("window.dreamframe.loaded.manifest.model.name") == "inception_v3"
    finally:
        server.shutdown()
