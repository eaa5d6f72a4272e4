"""The gradient kernels web/js/wasm-gradients.js adds to tfjs's wasm backend, against cpu.

Each kernel is run through tfjs's own dispatch (`engine().runKernel`) on wasm, then the same
call on the cpu backend, whose kernels are tfjs's reference implementation.
"""

import pytest

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
  return { wasm, cpu, zeroMode, registered: tf.getKernel(kernel, 'wasm') != null };
}"""


@pytest.fixture(scope="module")
def wasm_page(browser, site_url):
    page = browser.new_page()
    page.goto(site_url + "index.html?backend=wasm")
    page.wait_for_function("() => window.dreamframe && window.dreamframe.engine", timeout=90_000)
    yield page
    page.close()


def relative_error(a: list, b: list) -> float:
    scale = max(abs(v) for v in b)
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) / scale


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-s{c[3]}-{c[4]}")
def test_wasm_kernel_matches_cpu(wasm_page, case):
    result = wasm_page.evaluate(COMPARE, list(case))
    assert result["registered"]
    assert result["wasm"]["shape"] == result["cpu"]["shape"]
    assert relative_error(result["wasm"]["values"], result["cpu"]["values"]) <= 1e-4
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
    assert relative_error(result["wasm"], result["cpu"]) <= 1e-4
