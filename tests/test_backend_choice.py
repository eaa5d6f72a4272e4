"""A backend chosen by what it does where the GPU's name cannot tell (web/js/backends.js).

WebKit calls every GPU "Apple GPU" (Mesa's software rasteriser under Xvfb included), Firefox's
fingerprinting protection says "Mozilla": there the page times one convolution on WebGL and on
wasm and keeps the faster, remembered for later visits. Here Chromium's renderer name is
masked the same way (an init script), on its software WebGL (SwiftShader), which is slower
than wasm: the page must measure, pick wasm, and say why.
"""

import pytest
from conftest import READY, open_page

MASK = """for (const C of [WebGLRenderingContext, WebGL2RenderingContext]) {
  const get = C.prototype.getParameter;
  C.prototype.getParameter = function (p) {
    return p === 0x9246 ? 'Apple GPU' : get.call(this, p); };  // UNMASKED_RENDERER_WEBGL
}"""
BACKEND = """() => { const b = window.dreamframe.backend;
  return { name: b.name, reason: b.reason, measured: b.measured ?? null }; }"""


@pytest.fixture(scope="module")
def choice_page(browser, site_url):
    with open_page(browser) as page:
        page.goto(site_url + "index.html")
        page.wait_for_function(READY, timeout=90_000)
        yield page


@pytest.mark.parametrize("gpu_ms, wasm_ms, choice", [
    (5.0, 20.0, "webgl"),  # a real GPU
    (170.0, 22.0, "wasm"),  # WebKitGTK's software rasteriser, measured here
    (20.0, 20.0, "wasm"),  # a tie keeps the CPU: no shaders to compile
    (float("nan"), 20.0, "wasm"),  # the GPU's probe failed
    (5.0, float("nan"), "webgl"),  # wasm's probe failed
])
def test_the_faster_measured_backend_is_picked(choice_page, gpu_ms, wasm_ms, choice):
    picked = choice_page.evaluate("""async ([g, w]) => {
      const { pickByMeasurement } = await import('./js/backends.js');
      return pickByMeasurement(g, w); }""", [gpu_ms, wasm_ms])
    assert picked == choice


def test_masked_and_unknown_renderer_names_are_told_from_real_ones(choice_page):
    names = ["Apple GPU", "Mozilla", "WebKit WebGL", "", " apple gpu ",
             "ANGLE (NVIDIA, NVIDIA GeForce RTX 4070 Direct3D11 vs_5_0 ps_5_0)", "Apple M2 Pro",
             "Mali-G78", "llvmpipe (LLVM 15.0.6, 256 bits)"]
    masked = choice_page.evaluate("""async (names) => {
      const { rendererIsMasked } = await import('./js/backends.js');
      return names.map(rendererIsMasked); }""", names)
    assert masked == [True, True, True, True, True, False, False, False, False]


def test_a_masked_software_gpu_is_measured_and_loses_to_wasm(browser, site_url):
    with open_page(browser) as page:
        page.add_init_script(MASK)
        page.goto(site_url + "index.html")
        page.wait_for_function(READY, timeout=90_000)
        first = page.evaluate(BACKEND)
        measured = first["measured"]
        assert measured is not None and measured["renderer"] == "Apple GPU"
        faster = "webgl" if measured["gpuMs"] < measured["wasmMs"] else "wasm"
        assert first["name"] == measured["choice"] == faster
        assert first["name"] == "wasm"  # SwiftShader: slower than wasm by far
        assert "the GPU's name is masked" in page.text_content("#backend")
        assert not measured["remembered"]
        # The next visit takes the remembered choice without measuring again.
        page.reload()
        page.wait_for_function(READY, timeout=90_000)
        again = page.evaluate(BACKEND)
        assert again["name"] == "wasm" and again["measured"]["remembered"]
        assert "measured on an earlier visit" in page.text_content("#backend")


def test_a_named_gpu_is_not_measured(choice_page):
    # Chromium's own renderer name (SwiftShader, software): known, so no measurement.
    backend = choice_page.evaluate(BACKEND)
    assert backend["measured"] is None
    assert backend["name"] == "wasm"
