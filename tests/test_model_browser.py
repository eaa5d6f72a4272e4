"""The committed TF.js model in headless Chromium: it loads, and its outputs match the manifest."""

import json

from conftest import REPO

MANIFEST = json.loads((REPO / "models/mobilenet_v2/manifest.json").read_text())


def open_page(page, site_url):
    page.goto(site_url + "index.html?backend=wasm")
    page.wait_for_function("() => window.dreamframe && window.dreamframe.engine", timeout=90_000)


def test_model_loads_in_chromium_and_outputs_match_the_manifest(page, site_url):
    open_page(page, site_url)
    shapes = page.evaluate("""() => {
        const { tf, loaded } = window.dreamframe;
        return tf.tidy(() => [].concat(loaded.model.execute(tf.zeros([1, 300, 400, 3]),
                                                            loaded.nodes)).map((t) => t.shape));
    }""")

    expected = [[1, 300 // o["stride"], 400 // o["stride"], o["channels"]]
                for o in MANIFEST["outputs"]]
    assert shapes == expected
    assert page.evaluate("window.dreamframe.tf.getBackend()") == "wasm"
    # The page offers one weight per exported layer, named in words, layer name on hover.
    sliders = page.locator("#layers input[type=range]")
    assert sliders.count() == len(MANIFEST["outputs"])
    titles = page.locator("#layers label").evaluate_all("(ls) => ls.map((l) => l.title)")
    assert [t.split(" ")[0] for t in titles] == [o["layer"] for o in MANIFEST["outputs"]]
    assert page.locator("#layers label span").all_text_contents() == [
        o["label"] for o in MANIFEST["outputs"]]


def test_loading_the_model_keeps_only_its_weights(page, site_url):
    """The warm-up's outputs are freed: a load followed by disposing the model leaves the
    tensor count where it was (a load happens on every backend recovery)."""
    open_page(page, site_url)
    counts = page.evaluate("""async () => {
        const { tf, dreamModel } = window.dreamframe;
        const before = tf.memory().numTensors;
        const loaded = await dreamModel.load();
        const weights = tf.memory().numTensors - before;
        loaded.model.dispose();
        return { before, weights, after: tf.memory().numTensors,
                 expected: Object.keys(loaded.model.weights).length };
    }""")
    assert counts["weights"] == counts["expected"]
    assert counts["after"] == counts["before"]
