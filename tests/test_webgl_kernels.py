"""The kernels web/js/webgl-kernels.js replaces in tfjs's WebGL backend, against cpu.

Each replacement runs the same arithmetic as tfjs's own program with every size passed as a
uniform, so that one compiled shader program serves every size. Each case runs through
tfjs's own dispatch (`engine().runKernel`) on WebGL at two sizes (odd, then even: the
paddings of a strided 'same' convolution differ), then the same calls on the cpu backend,
tfjs's reference implementation. The kernel that runs must be the page's (its kernelFunc
carries `dreamframe = true`), and the second size must compile no program: that is what
the replacement is for (tfjs's own compiled one per size for each of these).
"""

import numpy as np
import pytest
from conftest import GPU_PREPARED, checked_with_test, open_page

EPS = float(np.finfo(np.float32).eps)


def conv(kind: str, x: list, filter_shape: list, stride: int, pad: str) -> tuple:
    """A convolution's input-gradient case: dy's shape from the forward convolution."""
    import math

    h, w = x[1], x[2]
    fh, fw = filter_shape[:2]
    if pad == "same":
        oh, ow = math.ceil(h / stride), math.ceil(w / stride)
    else:
        oh, ow = (h - fh) // stride + 1, (w - fw) // stride + 1
    channels = x[3] if kind.startswith("Depthwise") else filter_shape[3]
    attrs = {"inputShape": x, "strides": [stride, stride], "pad": pad}
    if kind.startswith("Depthwise"):
        attrs["dilations"] = [1, 1]
    else:
        attrs["dataFormat"] = "NHWC"
    return kind, {"dy": [x[0], oh, ow, channels], "filter": filter_shape}, attrs


def cases(h: int, w: int) -> list:
    """(kernel, input shapes, attrs) at an image of h x w with 8 channels."""
    x = [1, h, w, 8]
    return [
        ("Slice", {"x": x}, {"begin": [0, 1, 2, 0], "size": [1, h - 2, w - 3, -1]}),
        ("Slice", {"x": x}, {"begin": [0, 0, 5, 0], "size": [-1, -1, w - 5, -1]}),
        ("Concat", [x, [1, h, 7, 8]], {"axis": 2}),
        ("Concat", [x, [1, 3, w, 8], [1, 5, w, 8]], {"axis": 1}),
        ("PadV2", {"x": x}, {"paddings": [[0, 0], [0, 1], [0, 1], [0, 0]], "constantValue": 0}),
        ("PadV2", {"x": x}, {"paddings": [[0, 0], [1, 1], [2, 1], [0, 0]], "constantValue": 0.5}),
        ("ClipByValue", {"x": x}, {"clipValueMin": -0.5, "clipValueMax": 0.7}),
        ("ResizeBilinear", {"images": x}, {"size": [round(h * 1.4), round(w * 0.7)],
                                           "alignCorners": False, "halfPixelCenters": True}),
        ("ResizeBilinear", {"images": x}, {"size": [h + 5, w - 3], "alignCorners": True,
                                           "halfPixelCenters": False}),
        ("Sum", {"x": x}, {"axis": [0, 1, 2], "keepDims": False}),  # a bias's gradient
        ("Sum", {"x": x}, {"axis": [0, 1, 2, 3], "keepDims": False}),
        ("Sum", {"x": x}, {"axis": [3], "keepDims": True}),
        ("Mean", {"x": x}, {"axis": [0, 1, 2, 3], "keepDims": False}),
        ("Mean", {"x": x}, {"axis": [2, 3], "keepDims": False}),
        ("Max", {"x": x}, {"reductionIndices": [0, 1, 2, 3], "keepDims": False}),
        # Smaller ranks, as the guide's rows and products are (2-D) and tiles' crops (3-D).
        # tfjs samples a packed 2-D tensor of odd and of even sides with different code (its
        # texture is rounded up to even sides): the same parity at both sizes here.
        ("Slice", {"x": [2 * h, 2 * w]}, {"begin": [1, 4], "size": [2 * h - 3, -1]}),
        ("Slice", {"x": [h, w, 3]}, {"begin": [0, 2, 1], "size": [-1, w - 4, 2]}),
        ("Concat", [[2 * h, 5], [2 * h, 2 * w]], {"axis": 1}),
        ("Max", {"x": [h * w, 7]}, {"reductionIndices": [1], "keepDims": False}),
        ("Sum", {"x": [h, w, 3]}, {"axis": [0], "keepDims": False}),
        conv("Conv2DBackpropInput", x, [3, 3, 8, 6], 2, "same"),
        # A pointwise one runs as a matmul of [pixels, channels]: tfjs samples an odd and an
        # even number of pixels with different code (two programs in all), so an even one here.
        conv("Conv2DBackpropInput", [1, h, 2 * w, 8], [1, 1, 8, 6], 1, "valid"),
        conv("Conv2DBackpropInput", [1, h, 2 * w, 8], [1, 1, 8, 6], 1, "same"),
        conv("DepthwiseConv2dNativeBackpropInput", x, [3, 3, 8, 1], 2, "same"),
        conv("DepthwiseConv2dNativeBackpropInput", x, [3, 3, 8, 1], 2, "valid"),
        conv("DepthwiseConv2dNativeBackpropInput", x, [3, 3, 8, 1], 1, "same"),
    ]


SIZES = [(17, 23), (18, 22)]  # the reductions take as many passes at both

COMPARE = """async ([kernel, shapes, attrs]) => {
  const { tf } = window.dreamframe;
  const backend = tf.backend();
  const programs = () => Object.keys(backend.binaryCache).length;
  let seed = 1;
  const make = (shape) => tf.randomNormal(shape, 0, 1, 'float32', seed++);
  const list = Array.isArray(shapes) ? shapes.map(make) : Object.values(shapes).map(make);
  const named = (tensors) => (Array.isArray(shapes) ? tensors
    : Object.fromEntries(Object.keys(shapes).map((k, i) => [k, tensors[i]])));
  const before = programs();
  const out = tf.engine().runKernel(kernel, named(list), attrs);
  const webgl = { values: Array.from(await out.data()), shape: out.shape };
  const added = programs() - before;
  await tf.setBackend('cpu');
  const copies = await Promise.all(list.map(async (t) => tf.tensor(await t.data(), t.shape)));
  const ref = tf.engine().runKernel(kernel, named(copies), attrs);
  const cpu = { values: Array.from(await ref.data()), shape: ref.shape };
  tf.dispose([ref, ...copies]);
  await tf.setBackend('webgl');
  tf.dispose([out, ...list]);
  return { webgl, cpu, added, ours: tf.getKernel(kernel, 'webgl').kernelFunc.dreamframe === true };
}"""


@pytest.fixture(scope="module")
def webgl_page(gpu_browser, site_url):
    with open_page(gpu_browser) as page:
        page.goto(site_url + "index.html?backend=webgl&prepare=off")
        page.wait_for_function(GPU_PREPARED, timeout=180_000)
        assert page.evaluate("window.dreamframe.tf.getBackend()") == "webgl"
        yield page


@pytest.fixture(autouse=True)
def no_console_errors(webgl_page, request):
    """Each test leaves the shared page without a console error, uncaught exception or CSP
    violation (checked as each test returns)."""
    checked_with_test(webgl_page, request.node)


def assert_close(got: list, want: list, ulps: float, rtol: float = 1e-5) -> None:
    """As numpy's allclose, with atol `ulps` float32 ulps of the largest |want|: sums in
    another order round each partial sum at its own size (see tests/test_wasm_kernels.py)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    atol = ulps * EPS * max(np.abs(want).max(), 1e-30)
    excess = np.abs(got - want) - (atol + rtol * np.abs(want))
    worst = int(np.argmax(excess))
    assert excess[worst] <= 0, (f"{got[worst]} vs {want[worst]} at {worst} (atol {atol:.3g}); "
                                f"{int((excess > 0).sum())} of {got.size} beyond tolerance")


@pytest.mark.parametrize("index", range(len(cases(*SIZES[0]))),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(cases(*SIZES[0]))])
def test_webgl_kernel_matches_cpu_and_serves_every_size(webgl_page, index):
    results = [webgl_page.evaluate(COMPARE, list(cases(h, w)[index])) for h, w in SIZES]
    for result in results:
        assert result["ours"], "tfjs's own kernel runs on WebGL, not the page's"
        assert result["webgl"]["shape"] == result["cpu"]["shape"]
        # Measured: at most 2 ulps of the largest value apart (sums of at most 72 products,
        # bilinear weights); the reductions add 8 x 22 values in another order.
        assert_close(result["webgl"]["values"], result["cpu"]["values"], ulps=16)
    assert results[1]["added"] == 0, "the second size compiled a program of its own"


FROM_PIXELS = """async ([width, height, channels, url]) => {
  const { tf } = window.dreamframe;
  const backend = tf.backend();
  const programs = () => Object.keys(backend.binaryCache).length;
  let source;
  if (url) {  // an image element, drawn into a canvas by the kernel
    source = new Image(); source.src = url; await source.decode();
  } else {  // a canvas of known, opaque pixels
    source = document.createElement('canvas');
    source.width = width; source.height = height;
    const context = source.getContext('2d');
    const data = context.createImageData(width, height);
    for (let i = 0; i < width * height; i++) {
      data.data.set([(i * 7) % 256, (i * 13 + 5) % 256, (i * 31 + 11) % 256, 255], 4 * i);
    }
    context.putImageData(data, 0, 0);
  }
  const read = async () => {
    const t = tf.browser.fromPixels(source, channels);
    const values = { shape: t.shape, values: Array.from(await t.data()) };
    t.dispose();
    return values;
  };
  const before = programs();
  const webgl = await read();
  const added = programs() - before;
  await tf.setBackend('cpu');
  const cpu = await read();
  await tf.setBackend('webgl');
  return { webgl, cpu, added, ours: tf.getKernel('FromPixels', 'webgl').kernelFunc.dreamframe === true };
}"""


@pytest.mark.parametrize("channels", [3, 4])
def test_from_pixels_matches_cpu_and_serves_every_size(webgl_page, channels):
    """A photo's pixels, exactly (bytes), at two sizes with one program; then an image
    element (the page's photos), which the kernel draws into a canvas first."""
    results = [webgl_page.evaluate(FROM_PIXELS, [w, h, channels, None]) for h, w in SIZES]
    results.append(webgl_page.evaluate(FROM_PIXELS, [0, 0, channels, "samples/chelsea.jpg"]))
    for result in results:
        assert result["ours"]
        assert result["webgl"] == result["cpu"]
    assert results[0]["webgl"]["shape"] == [*SIZES[0], channels]
    assert results[1]["added"] == 0 and results[2]["added"] == 0


LAYOUTS = """async () => {
  const { tf } = window.dreamframe;
  const run = async (shape) => {
    const x = tf.randomNormal(shape, 0, 1, 'float32', 1);
    const filter = tf.randomNormal([1, 1, shape[3], 16], 0, 1, 'float32', 2);
    const bias = tf.randomNormal([16], 0, 1, 'float32', 3);
    const conv = (a, f, b) => tf.fused.conv2d({ x: a, filter: f, bias: b, strides: 1, pad: 'valid' });
    const y = conv(x, filter, bias);
    const webgl = await y.data();
    await tf.setBackend('cpu');
    const copies = await Promise.all([x, filter, bias].map(async (t) => tf.tensor(await t.data(), t.shape)));
    const ref = conv(...copies);
    const cpu = await ref.data();
    tf.dispose([ref, ...copies]);
    await tf.setBackend('webgl');
    const texShape = tf.backend().texData.get(x.dataId).texShape;
    tf.dispose([x, filter, bias, y]);
    let num = 0, den = 0;
    for (let i = 0; i < cpu.length; i++) { num += (webgl[i] - cpu[i]) ** 2; den += cpu[i] ** 2; }
    return { error: Math.sqrt(num / den), texShape };
  };
  return [await run([1, 34, 42, 32]), await run([1, 200, 200, 32])];
}"""


def test_a_program_compiled_for_one_texture_layout_is_not_reused_for_another(webgl_page):
    """The case tfjs 4.22's own program cache got wrong with shape uniforms (fixShaderKeys
    in web/js/webgl-kernels.js): a pointwise convolution, a matmul of [1, pixels, channels],
    at 34x42, where that matrix lies in its texture as it is, then at 200x200, where tfjs
    lays it out in another shape (more rows than a texture has; the relative error was 0.25)."""
    small, large = webgl_page.evaluate(LAYOUTS)
    assert small["texShape"] == [34 * 42, 32]
    assert large["texShape"] != [200 * 200, 32]  # the other layout
    assert small["error"] <= 1e-6 and large["error"] <= 1e-6, (small, large)


# The program keys one operation looks up, in tfjs's compile-only mode and then for real, on
# tensors that start on the CPU (as tf.ones, a blank image or a gradient's seed do).
COMPILE_ONLY_KEYS = """async (shape) => {
  const { tf } = window.dreamframe;
  const backend = tf.backend();
  const cache = backend.binaryCache;
  const looked = [];
  backend.binaryCache = new Proxy(cache, { has: (t, k) => { looked.push(k); return Reflect.has(t, k); } });
  const pass = () => { const a = tf.ones(shape), b = tf.fill(shape, 2); return [a, b, tf.mul(a, b)]; };
  try {
    tf.env().set('ENGINE_COMPILE_ONLY', true);
    let made;
    try { made = pass(); } finally { tf.env().set('ENGINE_COMPILE_ONLY', false); }
    backend.checkCompileCompletion();
    backend.getUniformLocations();
    tf.dispose(made);
    const compileOnly = looked.splice(0);
    made = pass();
    const real = looked.splice(0);  // (reading the result back runs a program of its own)
    const values = await made[2].data();
    tf.dispose(made);
    return { compileOnly, real, right: values.every((v) => v === 2) };
  } finally {
    backend.binaryCache = cache;
  }
}"""


def test_programs_compiled_ahead_are_the_ones_a_real_run_finds(webgl_page):
    """The page prepares a dream in tfjs's compile-only mode (pyscript_app/prepare.py), where
    a tensor from the CPU is given its texture layout but no texture. The programs compiled
    then must be keyed as the real run keys them (fixShaderKeys reads the layout, not the
    texture), or preparation compiles programs nobody uses and the dream compiles its own:
    13 of the 15 programs a new photo size added were such."""
    result = webgl_page.evaluate(COMPILE_ONLY_KEYS, [1, 13, 11, 7])
    assert result["right"]
    assert result["compileOnly"] and set(result["compileOnly"]) == set(result["real"]), [
        k[-60:] for k in set(result["compileOnly"]) ^ set(result["real"])]
