"""Compile before the click (pyscript_app/prepare.py, web/js/prepare.js): on WebGL and WebGPU
the page compiles a dream's shader programs while the visitor is still choosing, in slices
that leave the page answering, and a dream asked for meanwhile waits for what it lacks with
the progress shown, then dreams correctly. The GPUs are Chromium's software ones here
(SwiftShader), which compile and dream slowly: one octave, small photos.
"""

import pagelogic
import pytest
from conftest import READY, STATUS, canvas_change, watched_page
from PIL import Image

GPU_BACKENDS = ["webgl", "webgpu"]
# Before the page starts: what it holds when it says it is ready (programs, tensors), every
# report of its preparation, and every status and progress line it shows.
WATCH = """
window.seen = { reports: [], statuses: [], lines: [] };
addEventListener('dreamframe:ready', () => {
  const { tf, prepare } = window.dreamframe;
  window.seen.atReady = { programs: prepare.programCount(tf), tensors: tf.memory().numTensors };
});
addEventListener('dreamframe:prepared', () => {
  const { tf, prepare } = window.dreamframe;
  window.seen.atPrepared = { programs: prepare.programCount(tf), tensors: tf.memory().numTensors };
});
addEventListener('dreamframe:preparation', (event) => window.seen.reports.push(event.detail));
// Every turn of the page's event loop while a preparation runs, with how far it was: turns
// between slices are what lets the page answer a visitor (as a click or a key would be).
window.seen.turns = [];
const turn = () => {
  const preparation = window.dreamframe?.preparation;
  if (preparation?.state === 'running') window.seen.turns.push(preparation.slices);
  if (preparation?.state !== 'done') setTimeout(turn, 0);
};
setTimeout(turn, 0);
addEventListener('DOMContentLoaded', () => {
  for (const [id, log] of [['status', 'statuses'], ['progress-text', 'lines']]) {
    const node = document.getElementById(id);
    if (!node) continue;  // not the page (an embedding one)
    new MutationObserver(() => window.seen[log].push(node.textContent))
      .observe(node, { childList: true, characterData: true, subtree: true });
  }
});
"""
PREPARATION = "() => window.dreamframe.preparation"


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A real photo (scikit-image's cat), 64x48."""
    from skimage import data

    path = tmp_path_factory.mktemp("prepare") / "cat.png"
    Image.fromarray(data.chelsea()).resize((64, 48), Image.LANCZOS).save(path)
    return path


def start(page, site_url: str, backend: str, query: str = "octaves=1&steps=2") -> None:
    page.add_init_script(WATCH)
    page.goto(site_url + f"index.html?backend={backend}&{query}")
    page.wait_for_function(READY, timeout=180_000)
    assert page.evaluate("window.dreamframe.tf.getBackend()") == backend


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_programs_are_compiled_before_the_click_while_the_page_answers(
        gpu_module_context, site_url, backend):
    """No photo and no click: the page prepares a default dream by itself. While it does,
    the page's event loop turns between slices of the work (seen in the page itself, at
    several slices, so that how late a busy machine delivers the test's own input does not
    matter) and the visitor's input is taken; afterwards more programs exist than at ready,
    and no tensor was left behind."""
    with watched_page(gpu_module_context) as page:
        start(page, site_url, backend)
        page.click("#advanced summary")  # open "Fine-tune": the seed is in there
        answers = []
        for seed in range(11, 31):  # until the preparation is over (a busy machine answers
            done = page.evaluate("() => window.dreamframe.preparation?.slices ?? 0")  # late)
            page.wait_for_function(f"() => window.dreamframe.preparation?.slices > {done}",
                                   timeout=180_000)
            page.fill("#seed", str(seed))  # a visitor's input, handled between two slices
            answers.append(page.evaluate("""() => ({ seed: document.getElementById('seed').value,
              state: window.dreamframe.preparation.state,
              slices: window.dreamframe.preparation.slices })"""))
            if answers[-1]["state"] != "running":
                break
        assert [a["seed"] for a in answers] == [str(s) for s in range(11, 11 + len(answers))]
        slices = [a["slices"] for a in answers if a["state"] == "running"]
        assert slices == sorted(set(slices)), answers  # each answer further along
        page.wait_for_function("() => window.seen.atPrepared", timeout=300_000)
        seen = page.evaluate("window.seen")
        turned_at = sorted(set(seen["turns"]))
        assert len(turned_at) >= 3, seen["turns"]  # the page answered at three slices or more
        final = page.evaluate(PREPARATION)
        assert final["state"] == "done" and final["fraction"] == 1
        assert final["size"] == [96, 128]  # prepare.NOMINAL_SIZE: no photo yet
        assert final["compiled"] > 0
        assert seen["atPrepared"]["programs"] > seen["atReady"]["programs"]
        assert seen["atPrepared"]["programs"] == final["programs"]
        assert seen["atPrepared"]["tensors"] == seen["atReady"]["tensors"]
        assert final["slices"] > 3  # pieces of work, each followed by a task of the browser's
        assert page.console_errors == []


# The same dream of the photo twice through the engine; the results and how far each moved.
TWO_DREAMS = """async (url) => {
  const { tf, engine } = window.dreamframe;
  const img = new Image(); img.src = url; await img.decode();
  const x = window.dreamframe.images.toTensor(tf, img);
  const options = JSON.stringify({ octaves: 1, steps: 2, seed: 3 });
  const during = window.dreamframe.preparation.state;
  const first = await engine.dream(x, options);
  const second = await engine.dream(x, options);
  const stats = tf.tidy(() => [tf.max(tf.abs(tf.sub(first, second))),
                               tf.mean(tf.abs(tf.sub(first, x))).mul(127.5)]);
  const [apart, moved] = await Promise.all(stats.map((t) => t.data()));
  tf.dispose([x, first, second, ...stats]);
  return { during, apart: apart[0], moved: moved[0] };
}"""


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_a_dream_started_while_preparing_completes_correctly(gpu_module_context, site_url, site,
                                                             photo, backend):
    """A dream asked for in the middle of the preparation: the preparation gives way
    (stopped) and the dream comes out exactly as the same dream run again afterwards, and
    moved the photo. Then on the page: Dream pressed with a layer nothing has prepared
    (creatures, block_15) says it prepares the GPU, the progress line moves, and the dream
    runs and changes the photo."""
    (site / "prepare-cat.png").write_bytes(photo.read_bytes())
    with watched_page(gpu_module_context) as page:
        start(page, site_url, backend)
        page.wait_for_function("() => window.dreamframe.preparation?.slices > 0",
                               timeout=180_000)
        result = page.evaluate(TWO_DREAMS, "prepare-cat.png")
        assert result["during"] == "running"
        assert [r["state"] for r in page.evaluate("window.seen.reports")][-1] == "stopped"
        assert result["apart"] <= 1e-5, result  # the same programs, the same numbers
        assert result["moved"] > 0.5, result  # two steps of 0.02: about 2/255 on average

        page.set_input_files("#file", str(photo))
        page.wait_for_function(f"() => {STATUS}.startsWith('Photo')")
        page.evaluate("document.getElementById('w-block_15_expand_relu').value = '1'")
        page.click("#start")
        page.wait_for_function(f"() => {STATUS}.startsWith('Done')", timeout=300_000)
        seen = page.evaluate("window.seen")
        statuses = [s for s in seen["statuses"] if s in ("Preparing the GPU…", "Dreaming…")
                    or s.startswith("Done")]
        assert statuses[:2] == ["Preparing the GPU…", "Dreaming…"], statuses
        assert statuses[2].startswith("Done"), statuses
        shown = [line for line in seen["lines"] if line.startswith("Preparing the GPU… ")]
        assert len(set(shown)) >= 3, shown  # a line that moves, not a frozen bar
        assert seen["reports"][-1]["state"] == "done"  # the dream's own preparation
        assert page.evaluate("window.dreamframe.tf.getBackend()") == backend
        assert canvas_change(page) > 0.5
        assert page.console_errors == []


def test_prepare_off_compiles_nothing_ahead_and_still_dreams(gpu_module_context, site_url,
                                                             photo):
    """`?prepare=off` on WebGL: no preparation at all (none reported, `prepared` at once with
    the programs of ready), a photo loaded prepares nothing either, and Dream goes straight
    to dreaming (no "Preparing the GPU…") and changes the photo."""
    with watched_page(gpu_module_context) as page:
        # (a sample from the URL is loaded during start-up: before then it prepares nothing)
        start(page, site_url, "webgl", "octaves=1&steps=2&prepare=off&sample=chelsea")
        page.wait_for_function("() => window.seen.atPrepared", timeout=60_000)
        page.set_input_files("#file", str(photo))
        page.wait_for_function(f"() => {STATUS}.startsWith('Photo')")
        page.click("#start")
        page.wait_for_function(f"() => {STATUS}.startsWith('Done')", timeout=300_000)
        seen = page.evaluate("window.seen")
        assert seen["reports"] == [] and page.evaluate(PREPARATION) is None
        assert seen["atPrepared"]["programs"] == seen["atReady"]["programs"]
        assert "Preparing the GPU…" not in seen["statuses"]
        assert canvas_change(page) > 0.5


EMBED_HOST = """<!doctype html><link rel="icon" href="data:,">
<iframe id="f" src="index.html?embed&backend={backend}&octaves=1" width="800" height="700">
</iframe><script src="embed-prepare.js"></script>"""
EMBED_SCRIPT = """window.messages = [];
addEventListener('message', (e) => {
  if (e.data && e.data.source === 'dreamframe') window.messages.push(e.data);
});"""


@pytest.mark.parametrize("backend", ["webgl", "wasm"])
def test_the_embedding_page_hears_prepared_once_after_ready(gpu_module_context, site, site_url,
                                                            backend):
    """`prepared` follows `ready` once: on WebGL when the default dream's programs exist
    (then more than at ready), on wasm, which compiles none, at once."""
    (site / f"embed-prepare-{backend}.html").write_text(EMBED_HOST.format(backend=backend))
    (site / "embed-prepare.js").write_text(EMBED_SCRIPT)
    with watched_page(gpu_module_context) as page:
        page.add_init_script(WATCH)  # in the embedded page too
        page.goto(site_url + f"embed-prepare-{backend}.html")
        page.wait_for_function("() => window.messages.some((m) => m.type === 'prepared')",
                               timeout=300_000)
        frame = page.frames[1]
        frame.wait_for_function("() => window.dreamframe.preparation === null"
                                " || window.dreamframe.preparation.state === 'done'")
        types = [m["type"] for m in page.evaluate("window.messages")]
        assert types == ["ready", "prepared"], types
        prepared = page.evaluate("window.messages[1]")
        assert prepared["programs"] == frame.evaluate(
            "window.dreamframe.prepare.programCount(window.dreamframe.tf)")
        if backend == "wasm":
            assert prepared["programs"] == 0
            assert frame.evaluate("window.dreamframe.preparation") is None
        else:
            assert prepared["programs"] > frame.evaluate("window.seen.atReady.programs")
        assert page.console_errors == []


def test_the_preparing_line_says_how_far():
    assert pagelogic.preparing_text(0.0) == "Preparing the GPU… 0%"
    assert pagelogic.preparing_text(0.416) == "Preparing the GPU… 41%"
    assert pagelogic.preparing_text(1.0) == "Preparing the GPU… 100%"
    assert pagelogic.preparing_text(1.7) == "Preparing the GPU… 100%"
