"""The GPU paths: WebGPU and WebGL dream correctly, or the page knows it and moves on.

Headless Chromium here has SwiftShader, a software GPU: WebGL on it and WebGPU through its
software adapter (`--enable-unsafe-webgpu`). Neither says anything about speed on a real
GPU, but both run tfjs's real WebGL and WebGPU code, so correctness can be checked: the
model's input gradient against tfjs's cpu backend, one engine step against native
TensorFlow, a short dream that must visibly change the photo, and the health check against
a backend deliberately broken to return zeros. Sizes are small: a step costs about a second
here, and the first of each new size several (shader compilation).
"""

import base64
import json

import numpy as np
import pytest
from conftest import READY, STATUS, bounded, canvas_change, checked_with_test, page_step
from conftest import watched_page as open_watched
from PIL import Image

GPU_BACKENDS = ["webgl", "webgpu"]
WEIGHTS = {"block_5_expand_relu": 0.5, "block_8_expand_relu": 1.0, "block_12_expand_relu": 1.0}

# The model's input gradient for the default objective, on a random image (`seed`) or on a
# photo of the site (`url`), read only with `await data()` (a synchronous read loses the
# software WebGPU device for good).
GRADIENT = """async ([weights, source]) => {
  const { tf, loaded } = window.dreamframe;
  let x;
  if (source.url) {
    const img = new Image(); img.src = source.url; await img.decode();
    x = window.dreamframe.images.toTensor(tf, img);
  } else {
    x = tf.randomUniform([1, 67, 83, 3], -1, 1, 'float32', source.seed);
  }
  const byLayer = new Map(loaded.manifest.outputs.map((o) => [o.layer, o.node]));
  const layers = Object.keys(weights);
  const loss = (t) => {
    const acts = [].concat(loaded.model.execute(t, layers.map((l) => byLayer.get(l))));
    return tf.addN(acts.map((a, i) => tf.mul(tf.mean(a), weights[layers[i]])));
  };
  const grad = tf.grad(loss)(x);
  const values = await grad.data();
  x.dispose(); grad.dispose();
  const bytes = new Uint8Array(values.buffer);
  let text = ''; for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)); }
  return { backend: tf.getBackend(), b64: btoa(text) };
}"""
# Watches every reuse of a compiled WebGL program (tfjs's cache, keyed without sizes when shape
# uniforms are on): the first time a program is reused for a new combination of input
# shapes and texture layouts, the source these inputs would get is generated too (tfjs's
# own compiler, through the cache's `make`) and compared with the cached program's. Any
# difference means the cached program reads these inputs wrongly.
WATCH_REUSES = """() => {
  const backend = window.dreamframe.tf.backend();
  const stack = [];
  const run = backend.runWebGLProgram, lookUp = backend.getAndSaveBinary;
  backend.runWebGLProgram = function (program, inputs, ...rest) {
    stack.push(inputs);
    try { return run.call(this, program, inputs, ...rest); } finally { stack.pop(); }
  };
  const seen = new Set();
  const watch = window.programReuses = { reuses: 0, checked: 0, wrong: [] };
  backend.getAndSaveBinary = function (key, make) {
    let compiled = false;
    const binary = lookUp.call(this, key, () => { compiled = true; return make(); });
    const inputs = stack[stack.length - 1];
    if (compiled || !inputs) return binary;
    watch.reuses++;
    const layout = inputs.map((i) => { const d = this.texData.get(i.dataId);
      return `${i.shape}/${d.shape}/${d.texShape}/${d.isPacked}/${d.texture == null}`; });
    const signature = `${key}#${layout.join(';')}`;
    if (seen.has(signature)) return binary;
    seen.add(signature);
    watch.checked++;
    const fresh = make();
    if (fresh.source !== binary.source) {
      const shapes = (b) => b.inShapeInfos.map((s) => `${s.logicalShape} in ${s.texShape}`).join(', ');
      watch.wrong.push(`compiled for ${shapes(binary)}, reused for ${shapes(fresh)}`);
    }
    this.gpgpu.gl.deleteProgram(fresh.webGLProgram);
    return binary;
  };
}"""
INPUTS = {"random": {"seed": 7}, "photo": {"url": "test-photo.png"},
          "full-size photo": {"url": "samples/chelsea.jpg"}}

# Breaks the input gradient of every convolution on `backend`: the kernel still runs, then
# its answer is replaced by zeros, as a faulty driver might. Per backend, like any kernel.
BREAK = """(backend) => {
  const tf = window.dreamframe.tf;
  const name = 'Conv2DBackpropInput';
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


def decode(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture
def gpu_page(gpu_module_context):
    """A new watched page in the WebGPU browser (checked as the `page` fixture is)."""
    with open_watched(gpu_module_context) as page:
        yield page


@pytest.fixture(scope="module")
def photo(site):
    """A real 96x64 photo (scikit-image's cat) in the served site and as pixels."""
    from skimage import data

    image = Image.fromarray(data.chelsea()).resize((96, 64), Image.LANCZOS)
    image.save(site / "test-photo.png")
    return np.asarray(image)


@pytest.fixture(scope="module")
def cpu_gradients(gpu_module_context, site_url, photo):
    """The reference: the same gradients on tfjs's cpu backend (plain JavaScript)."""
    with open_watched(gpu_module_context) as page:
        page.goto(site_url + "index.html?backend=cpu")
        page.wait_for_function(READY, timeout=120_000)
        results = {name: bounded(page, 120, f"the cpu gradient of the {name} input",
                                 GRADIENT, [WEIGHTS, source])
                   for name, source in INPUTS.items()}
    assert {r["backend"] for r in results.values()} == {"cpu"}
    return {name: decode(r["b64"]) for name, r in results.items()}


def open_page(page, site_url: str, query: str) -> None:
    """The page with `query`, without compiling ahead (prepare=off: not what these tests
    are about, and a software GPU's preparation costs seconds of CPU)."""
    page.goto(site_url + "index.html?prepare=off&" + query)
    page.wait_for_function(READY, timeout=180_000)


# What the gradient and step tests open: a dream from the page itself is one short octave.
QUERY = "octaves=1&steps=3"


@pytest.fixture(scope="module")
def shared_webgpu_page(gpu_module_context, site_url):
    """One WebGPU page for the module's WebGPU tests, which run the same shapes: compiling
    them on the software adapter is most of each test's time (seconds a program), so the
    later tests find the earlier ones' programs ready. Each test that uses it gets it
    checked with itself (`webgpu_page`, `backend_page`). The test that breaks its kernels
    comes after the others in the file."""
    with open_watched(gpu_module_context) as page:
        open_page(page, site_url, "backend=webgpu&" + QUERY)
        yield page


@pytest.fixture
def webgpu_page(shared_webgpu_page):
    """The module's WebGPU page, checked with the test that asks for it."""
    return checked_with_test(shared_webgpu_page)


@pytest.fixture
def backend_page(request, backend, site_url):
    """The page a test of `backend` runs on (`QUERY`): WebGPU's shared one, or a fresh
    WebGL page."""
    if backend == "webgpu":
        return request.getfixturevalue("webgpu_page")
    page = request.getfixturevalue("gpu_page")
    open_page(page, site_url, f"backend={backend}&" + QUERY)
    return page


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_the_models_input_gradient_matches_cpu(backend_page, cpu_gradients, backend):
    """On a random image, float32 textures and buffers do cpu's arithmetic up to summation
    order. On photos, flat regions put some ReLU inputs at exactly 0 or 6, where rounding
    in another order flips the gate: 0.7% of the gradient differs (relative error 2.6e-3 to
    3.2e-3 at 451x300, measured on both), the direction does not.

    On WebGL it also guards the shape uniforms (web/js/backends.js): one compiled program
    serves all three sizes, in that order. tfjs's own cache key let a 451x300 gradient reuse
    programs compiled at 67x83 for another texture layout (relative error 1.0); every reuse
    is checked against the source its inputs would get (WATCH_REUSES)."""
    gpu_page = backend_page
    if backend == "webgl":
        assert gpu_page.evaluate("window.dreamframe.tf.env().getBool('WEBGL_USE_SHAPES_UNIFORMS')")
        gpu_page.evaluate(WATCH_REUSES)
    errors = {}
    for name, source in INPUTS.items():
        if name == "full-size photo" and backend != "webgl":
            continue  # the shape-uniform guard; 451x300 costs 30 s on the software WebGPU
        result = bounded(gpu_page, 120, f"the {backend} gradient of the {name} input",
                         GRADIENT, [WEIGHTS, source])
        assert result["backend"] == backend
        got, want = decode(result["b64"]), cpu_gradients[name]
        errors[name] = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        assert np.abs(got).max() > 0
    if backend == "webgl":
        reuses = gpu_page.evaluate("window.programReuses")
        assert reuses["checked"] > 100, reuses  # programs did serve other sizes
        assert reuses["wrong"] == [], reuses["wrong"][:5]
    assert errors["random"] <= 1e-4, errors
    assert max(v for k, v in errors.items() if k != "random") <= 1e-2, errors


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_one_step_matches_native_and_a_short_dream_changes_the_photo(backend_page, photo, site,
                                                                    native_backend, backend):
    """One `engine.step` from the same image as native TensorFlow's, then a whole short dream
    through the page (one page load: the first step of a new size compiles for seconds)."""
    from dreamengine.objective import Objective
    from dreamengine.render import gradient_step
    from dreamengine.transforms import Transforms
    from native import tf_backend

    gpu_page = backend_page
    options = {"weights": WEIGHTS, "jitter": 0, "tile_size": 512, "step_size": 0.02}
    got = page_step(gpu_page, "test-photo.png", options, (5, 7))
    ops, _ = native_backend()
    updated, grad, _ = gradient_step(ops, tf_backend.to_tensor(photo), Objective(WEIGHTS),
                                     0.02, Transforms(0, 512), (5, 7), (-1.0, 1.0))
    assert cosine(got["gradient"], np.asarray(grad)) >= 0.999
    image = np.asarray(got["image"], dtype=np.float32).reshape(np.asarray(updated).shape)
    assert np.abs(image - np.asarray(updated)).max() * 127.5 <= 2.0

    gpu_page.set_input_files("#file", str(site / "test-photo.png"))
    gpu_page.wait_for_function(f"() => {STATUS}.startsWith('Photo')")
    gpu_page.click("#start")
    gpu_page.wait_for_function(f"() => {STATUS}.startsWith('Done')", timeout=300_000)
    assert gpu_page.evaluate("window.dreamframe.tf.getBackend()") == backend
    change = canvas_change(gpu_page)
    # Three steps of 0.02 move a photo by about 3-4/255 on average; nothing moves it by 0.
    assert change > 1.0, f"mean change {change:.2f}/255"


def test_a_backend_that_returns_zeros_is_caught_named_and_replaced(gpu_page, site_url, site,
                                                                   photo):
    open_page(gpu_page, site_url, "backend=webgl&octaves=1&steps=2")
    gpu_page.evaluate(BREAK, "webgl")
    gpu_page.set_input_files("#file", str(site / "test-photo.png"))
    gpu_page.wait_for_function(f"() => {STATUS}.startsWith('Photo')")
    gpu_page.click("#start")
    gpu_page.wait_for_function(f"() => {STATUS}.includes('Done')", timeout=300_000)
    status = gpu_page.locator("#status").inner_text()
    assert status.startswith("The WebGL backend returned no gradient on this device. "
                             "Switched to WebAssembly.")
    assert gpu_page.evaluate("window.dreamframe.tf.getBackend()") == "wasm"
    assert gpu_page.evaluate("sessionStorage.getItem('dreamframe:broken-backends')") == (
        json.dumps(["webgl"]))
    # Remembered for the visit: a reload does not pick the broken backend again by itself.
    open_page(gpu_page, site_url, "")
    assert gpu_page.evaluate("window.dreamframe.tf.getBackend()") != "webgl"


def test_webgpu_returning_zeros_is_caught_at_the_first_step(webgpu_page, photo):
    """The same check on WebGPU (what the page does next is the WebGL test's), on the
    module's WebGPU page, after its other tests: this one breaks it."""
    gpu_page = webgpu_page
    assert gpu_page.evaluate("window.dreamframe.tf.getBackend()") == "webgpu"
    gpu_page.evaluate(BREAK, "webgpu")
    message = bounded(gpu_page, 120, "a dream on the broken WebGPU backend", """async () => {
      const { tf, engine } = window.dreamframe;
      const img = new Image(); img.src = 'test-photo.png'; await img.decode();
      const x = window.dreamframe.images.toTensor(tf, img);
      try { await engine.dream(x, JSON.stringify({ octaves: 1, steps: 1 })); return 'no error'; }
      catch (error) { return String(error.message || error); }
      finally { x.dispose(); }
    }""")
    assert "returned no gradient on this device" in message


def test_an_embedding_page_is_told_when_the_gpu_computes_nothing(gpu_page, site_url, site,
                                                                 photo):
    (site / "embed-gpu.html").write_text(
        '<!doctype html><link rel="icon" href="data:,"><iframe id="f" src="index.html?embed&prepare=off&backend=webgl&octaves=1&steps=2"'
        ' width="800" height="700"></iframe><script src="embed-gpu.js"></script>')
    (site / "embed-gpu.js").write_text("""
      window.messages = [];
      addEventListener('message', (e) => { if (e.data && e.data.source === 'dreamframe') {
        const { image, ...rest } = e.data; window.messages.push(rest); } });
      window.send = async () => {
        const blob = await (await fetch('test-photo.png')).blob();
        document.getElementById('f').contentWindow.postMessage({ type: 'dream', image: blob }, '*');
      };""")
    gpu_page.goto(site_url + "embed-gpu.html")
    gpu_page.wait_for_function("() => window.messages.some((m) => m.type === 'ready')",
                               timeout=180_000)
    frame = gpu_page.frames[1]
    frame.evaluate(BREAK, "webgl")
    gpu_page.evaluate("window.send()")
    gpu_page.wait_for_function("() => window.messages.some((m) => m.type === 'done')",
                               timeout=300_000)
    messages = gpu_page.evaluate("window.messages")
    notices = [m for m in messages if m["type"] == "progress" and "notice" in m]
    assert len(notices) == 1
    assert notices[0]["notice"].startswith("The WebGL backend returned no gradient")
    assert notices[0]["backend"] == "wasm"
    assert [m["type"] for m in messages].count("done") == 1


def test_a_zoom_video_goes_through_the_same_failure_policy(gpu_page, site_url, site, photo):
    """A zoom on a backend that computes nothing is replaced and made again, as a dream is."""
    open_page(gpu_page, site_url, "backend=webgl&zoom_frames=3&zoom_steps=1")
    gpu_page.evaluate(BREAK, "webgl")
    gpu_page.set_input_files("#file", str(site / "test-photo.png"))
    gpu_page.wait_for_function(f"() => {STATUS}.startsWith('Photo')")
    gpu_page.evaluate("document.getElementById('zoom-box').open = true")
    gpu_page.click("#zoom-start")
    gpu_page.wait_for_function(f"() => {STATUS}.startsWith('Done: 3 frames')", timeout=300_000)
    assert gpu_page.evaluate("window.dreamframe.tf.getBackend()") == "wasm"
    assert "WebGL failed" in gpu_page.locator("#backend").text_content()
    assert not gpu_page.locator("#zoom-download").is_disabled()
