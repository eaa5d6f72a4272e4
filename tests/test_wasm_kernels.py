"""The kernels web/js/wasm-kernels.js adds to (or replaces in) tfjs's wasm backend, against cpu.

Each kernel is run through tfjs's own dispatch (`engine().runKernel`) on wasm, then the same
call on the cpu backend, whose kernels are tfjs's reference implementation. The kernel that
runs on wasm must be the page's own (its kernelFunc carries `dreamframe = true`): tfjs's wasm
has a Conv2DBackpropInput, Identity and Slice of its own, which would pass the comparisons
just as well if the replacement had silently failed.
"""

import math

import numpy as np
import pytest
from conftest import checked_with_test, watched_page

EPS = float(np.finfo(np.float32).eps)  # 1.2e-7: one ulp of 1.0
# The model's input gradient passes through about 50 kernels, each rounding in its own order:
# measured 2.4 ulps of the largest value beyond rtol 1e-5 (6.3 ulps at most in all).
MODEL_ULPS = 32

CASES = [
    # kernel, x shape, filter shape, strides, pad
    ("DepthwiseConv2dNativeBackpropInput", [1, 9, 11, 8], [3, 3, 8, 1], 1, "same"),
    ("DepthwiseConv2dNativeBackpropInput", [2, 10, 13, 8], [3, 3, 8, 1], 2, "valid"),
    ("DepthwiseConv2dNativeBackpropInput", [1, 11, 10, 4], [3, 3, 4, 1], 2, "same"),
    ("DepthwiseConv2dNativeBackpropFilter", [1, 9, 11, 8], [3, 3, 8, 1], 1, "same"),
    ("DepthwiseConv2dNativeBackpropFilter", [2, 10, 13, 8], [3, 3, 8, 1], 2, "valid"),
    ("DepthwiseConv2dNativeBackpropFilter", [1, 11, 10, 4], [3, 3, 4, 1], 2, "same"),
    ("Conv2DBackpropFilter", [1, 9, 11, 8], [1, 1, 8, 6], 1, "same"),
    ("Conv2DBackpropFilter", [2, 17, 14, 3], [3, 3, 3, 5], 2, "valid"),
    ("Conv2DBackpropFilter", [1, 12, 9, 4], [3, 3, 4, 7], 2, "same"),
    ("Conv2DBackpropInput", [1, 9, 11, 8], [1, 1, 8, 6], 1, "same"),
    ("Conv2DBackpropInput", [2, 17, 14, 3], [3, 3, 3, 5], 2, "valid"),
    ("Conv2DBackpropInput", [1, 12, 9, 4], [3, 3, 4, 7], 2, "same"),
    ("Conv2DBackpropInput", [1, 10, 10, 4], [3, 3, 4, 6], 1, "same"),
    # the stride phases (byPhases): even and odd sides, a filter larger than the stride,
    # stride 3, a stride equal to the filter, 'same' padding that is not symmetric
    ("Conv2DBackpropInput", [1, 16, 15, 3], [3, 3, 3, 8], 2, "same"),
    ("Conv2DBackpropInput", [1, 13, 14, 5], [5, 5, 5, 4], 3, "same"),
    ("Conv2DBackpropInput", [2, 12, 12, 3], [2, 2, 3, 4], 2, "valid"),
    ("Conv2DBackpropInput", [1, 9, 12, 2], [4, 4, 2, 3], 1, "same"),
    ("DepthwiseConv2dNativeBackpropInput", [1, 16, 15, 24], [3, 3, 24, 1], 2, "same"),
    ("DepthwiseConv2dNativeBackpropInput", [1, 13, 14, 5], [5, 5, 5, 1], 3, "valid"),
    ("DepthwiseConv2dNativeBackpropInput", [1, 9, 12, 3], [4, 4, 3, 1], 1, "same"),
]

COMPARE = """async ([kernel, xShape, filterShape, stride, pad]) => {
  const { tf } = window.dreamframe;
  const strides = [stride, stride];
  const convInfo = tf.backend_util.computeConv2DInfo(
    xShape, filterShape, strides, 1, pad, undefined, kernel.startsWith('Depthwise'));
  const dyShape = [xShape[0], convInfo.outHeight, convInfo.outWidth, convInfo.outChannels];
  const x = tf.randomNormal(xShape, 0, 1, 'float32', 1);
  const filter = tf.randomNormal(filterShape, 0, 1, 'float32', 2);
  const dy = tf.randomNormal(dyShape, 0, 1, 'float32', 3);
  const run = () => {
    const attrs = { strides, pad, dilations: [1, 1], dataFormat: 'NHWC' };
    const out = kernel.endsWith('Input')
      ? tf.engine().runKernel(kernel, { dy, filter }, { ...attrs, inputShape: xShape })
      : tf.engine().runKernel(kernel, { x, dy }, { ...attrs, filterShape });
    const values = Array.from(out.dataSync());
    const shape = out.shape;
    out.dispose();
    return { values, shape };
  };
  await tf.setBackend('wasm');
  window.dreamframe.setFilterGradients('exact');
  const wasm = run();
  window.dreamframe.setFilterGradients('zero');
  const zeroMode = run();
  await tf.setBackend('cpu');
  const cpu = run();
  await tf.setBackend('wasm');
  x.dispose(); filter.dispose(); dy.dispose();
  const registered = tf.getKernel(kernel, 'wasm');
  return { wasm, cpu, zeroMode, ours: registered?.kernelFunc.dreamframe === true };
}"""


@pytest.fixture(scope="module")
def wasm_page(module_context, site_url):
    with watched_page(module_context) as page:
        page.goto(site_url + "index.html?backend=wasm")
        page.wait_for_function("() => window.dreamframe && window.dreamframe.engine",
                               timeout=90_000)
        yield page


@pytest.fixture(autouse=True)
def no_console_errors(wasm_page, request):
    """Each test leaves the shared page without a console error, uncaught exception or CSP
    violation: it is checked as each test returns (`checked_with_test`)."""
    checked_with_test(wasm_page, request.node)


def assert_close(got: list, want: list, ulps: float, rtol: float = 1e-5) -> None:
    """Elementwise, as numpy's allclose: |got - want| <= atol + rtol * |want|, with atol
    `ulps` float32 ulps of the largest |want|.

    Why atol scales with the largest value: the two backends add the same products in another
    order, and each partial sum is rounded to float32 at its own size, which reaches that of
    the largest results. An entry whose terms cancel to nearly 0 keeps that absolute error, so
    no relative tolerance alone fits it; a large entry is held to `rtol`.
    """
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    atol = ulps * EPS * np.abs(want).max()
    excess = np.abs(got - want) - (atol + rtol * np.abs(want))
    worst = int(np.argmax(excess))
    assert excess[worst] <= 0, (f"{got[worst]} vs {want[worst]} at {worst} (atol {atol:.3g}); "
                                f"{int((excess > 0).sum())} of {got.size} beyond tolerance")


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-s{c[3]}-{c[4]}")
def test_wasm_kernel_matches_cpu(wasm_page, case):
    result = wasm_page.evaluate(COMPARE, list(case))
    assert result["ours"], "tfjs's own kernel runs on wasm, not the page's"
    assert result["wasm"]["shape"] == result["cpu"]["shape"]
    # Measured: at most 2.3 ulps of the largest value apart (sums of at most 96 products).
    assert_close(result["wasm"]["values"], result["cpu"]["values"], ulps=8)
    if "Filter" in case[0]:  # what a dream uses: no work, zeros of the right shape
        assert result["zeroMode"]["shape"] == result["cpu"]["shape"]
        assert set(result["zeroMode"]["values"]) == {0}
    else:
        assert result["zeroMode"] == result["wasm"]


def test_model_input_gradient_on_wasm_matches_cpu(wasm_page):
    result = wasm_page.evaluate("""async () => {
      const { tf, loaded } = window.dreamframe;
      const x = tf.randomUniform([1, 67, 83, 3], -1, 1, 'float32', 7);
      const nodes = loaded.manifest.outputs.map((o) => o.node);
      const loss = (image) => tf.addN(loaded.model.execute(image, nodes).map((t) => tf.mean(t)));
      const grad = () => { const g = tf.grad(loss)(x); const v = Array.from(g.dataSync());
                           g.dispose(); return v; };
      await tf.setBackend('wasm'); const wasm = grad();
      await tf.setBackend('cpu'); const cpu = grad();
      await tf.setBackend('wasm'); x.dispose();
      return { wasm, cpu };
    }""")
    assert_close(result["wasm"], result["cpu"], ulps=MODEL_ULPS)


def test_relu6_gradient_on_wasm_matches_cpu_at_the_edges_and_runs_as_one_kernel(wasm_page):
    result = wasm_page.evaluate("""async () => {
      const { tf } = window.dreamframe;
      const edges = [-1, 0, 1e-7, 3, 6 - 1e-6, 6, 6 + 1e-6, 7, NaN, -0, Infinity];
      // 1011 values: the SIMD loop takes four at a time, JavaScript the last three
      const x = tf.concat([tf.tensor(edges), tf.randomUniform([1000], -3, 9, 'float32', 5)]);
      const w = tf.randomNormal([1011], 0, 1, 'float32', 6);
      const grad = () => {
        const g = tf.grad((v) => tf.sum(tf.mul(tf.relu6(v), w)))(x);
        const values = Array.from(g.dataSync());
        g.dispose();
        return values;
      };
      await tf.setBackend('wasm');
      const wasm = grad();
      const kernels = (await tf.profile(() => tf.grad((v) => tf.sum(tf.relu6(v)))(x)))
        .kernels.map((k) => k.kernelName || k.name);
      const { simdRelu6Grad } = await import('./js/wasm-simd.js');
      const simd = simdRelu6Grad(tf.backend()) !== null;
      await tf.setBackend('cpu'); const cpu = grad();
      await tf.setBackend('wasm'); x.dispose(); w.dispose();
      return { wasm, cpu, kernels, simd };
    }""")
    assert result["simd"], "the Relu6 gradient runs in JavaScript, not as the SIMD loop"
    # A mask times dy: exactly equal, but where x is NaN: tfjs's cpu gradient is NaN there
    # (its Step passes NaN on), TensorFlow's and the page's are 0
    cpu = [0 if math.isnan(v) else v for v in result["cpu"]]
    assert result["wasm"] == cpu
    assert result["wasm"][:11] == [0, 0] + cpu[2:6] + [0, 0, 0, 0, 0]
    assert "Relu6Grad" in result["kernels"]
    assert "LessEqual" not in result["kernels"]


def test_identity_on_wasm_shares_memory_and_frees_it_with_the_last_reference(wasm_page):
    result = wasm_page.evaluate("""async () => {
      const { tf } = window.dreamframe;
      const buffers = () => tf.memory().numDataBuffers;
      const start = buffers();
      const x = tf.randomUniform([1, 64, 64, 3], -1, 1, 'float32', 9);
      const expected = Array.from(x.dataSync());
      const y = tf.clone(x);
      const shared = buffers() === start + 1;  // one buffer, two tensors
      x.dispose();
      const kept = Array.from(y.dataSync());
      y.dispose();
      return { shared, same: kept.every((v, i) => v === expected[i]), left: buffers() - start,
               ours: tf.getKernel('Identity', 'wasm').kernelFunc.dreamframe === true };
    }""")
    assert result == {"shared": True, "same": True, "left": 0, "ours": True}


SLICES = [
    # shape, begin, size: a roll's halves, a crop, whole inner axes, a single element, -1 sizes
    ([1, 7, 9, 3], [0, 4, 0, 0], [-1, 3, -1, -1]),
    ([1, 7, 9, 3], [0, 0, 5, 0], [-1, -1, 4, -1]),
    ([2, 8, 6, 5], [1, 2, 1, 1], [1, 5, 4, 3]),
    ([1, 8, 6, 5], [0, 3, 2, 4], [1, 1, 1, 1]),
    ([4, 6], [1, 0], [2, 6]),
    ([10], [3], [5]),
    ([3, 4, 5], [0, 0, 0], [3, 4, 5]),
    ([3, 4, 5], [1, 1, 0], [0, 2, 5]),
]


@pytest.mark.parametrize("case", SLICES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_slice_on_wasm_matches_cpu(wasm_page, case, dtype):
    result = wasm_page.evaluate("""async ([shape, begin, size, dtype]) => {
      const { tf } = window.dreamframe;
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(Array.from({ length: n }, (_, i) => (i * 7) % 11), shape, dtype);
      const run = () => { const y = tf.slice(x, begin, size);
                          const out = { shape: y.shape, values: Array.from(y.dataSync()) };
                          y.dispose(); return out; };
      await tf.setBackend('wasm'); const wasm = run();
      await tf.setBackend('cpu'); const cpu = run();
      await tf.setBackend('wasm'); x.dispose();
      return { wasm, cpu, ours: tf.getKernel('Slice', 'wasm').kernelFunc.dreamframe === true };
    }""", [*case, dtype])
    assert result["ours"]
    assert result["wasm"] == result["cpu"]
