"""What web/js/gpu-kernels.js changes on tfjs's WebGL and WebGPU backends, against cpu.

Chromium's software adapters (WebGL on SwiftShader, the software WebGPU adapter) run tfjs's
real WebGL and WebGPU code, so results can be compared with the cpu backend, tfjs's
reference implementation. One page serves every test: opened on WebGPU, it has both GPU
backends (WebGL is in tf.min.js) and the cpu backend; inputs are made per backend from plain
arrays and read with `await data()` only (a synchronous read, including tfjs's own when a
tensor moves between backends, loses the software WebGPU device for good).

Each test also runs tfjs's own path (`setGpuKernels(false)`) to show what it would see
without the change: kernels that must have disappeared are there. What is tested: the
ReLU6 gradient in one program (both backends), fused convolutions' filter and bias
gradients computed only when asked for (both), WebGL's 1x1 and depthwise input gradients as
forward convolutions, and the model's whole input gradient with all of it.
"""

import math

import numpy as np
import pytest
from conftest import GPU_PREPARED, open_page
from test_wasm_kernels import assert_close

GPU_BACKENDS = ["webgl", "webgpu"]

# Deterministic inputs without tfjs's random ops (which differ between backends).
HELPERS = """
  const noise = (n, seed) => {
    let s = seed >>> 0;
    return Float32Array.from({ length: n }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 31 - 1;
    });
  };
  const size = (shape) => shape.reduce((a, b) => a * b, 1);
  // [the kernels f runs, by name; f's result] (tf.profile would read outputs synchronously
  // on WebGPU).
  const traced = (tf, f) => {
    const engine = tf.engine();
    const runKernel = engine.runKernel;
    const names = [];
    engine.runKernel = function (name, ...rest) { names.push(name); return runKernel.call(this, name, ...rest); };
    try { return [names, f()]; } finally { engine.runKernel = runKernel; }
  };
"""

RELU6 = """async ([backend, shape]) => {
  /* HELPERS */
  const { tf, setGpuKernels } = window.dreamframe;
  const n = size(shape);
  const edges = [-1, 0, -0, 1e-7, 3, 6 - 1e-6, 6, 6 + 1e-6, 7, Infinity, -Infinity, NaN];
  const xs = noise(n, 5).map((v, i) => (i < edges.length ? edges[i] : 6 * v + 3));
  const dys = noise(n, 6).map((v) => 2 * v);
  const read = async (t) => { const v = Array.from(await t.data()); t.dispose(); return v; };
  const gradient = (x, dy) => tf.grad((v) => tf.sum(tf.mul(tf.relu6(v), dy)))(x);

  await tf.setBackend('cpu');
  let x = tf.tensor(xs, shape), dy = tf.tensor(dys, shape);
  const cpu = {
    grad: await read(gradient(x, dy)),
    formula: await read(tf.tidy(() => tf.mul(dy, tf.cast(tf.mul(tf.lessEqual(x, 6), tf.step(x)), 'float32')))),
  };
  x.dispose(); dy.dispose();

  await tf.setBackend(backend);
  x = tf.tensor(xs, shape); dy = tf.tensor(dys, shape);
  const gpu = { direct: {}, packed: {} };
  // Inputs as uploaded, as a packed program's outputs (WebGL's 2x2 texels), and one of each.
  // (Made in this order: a fresh tensor is uploaded in the layout of its first program.)
  const made = [];
  const packed = (t) => { made.push(tf.mul(t, 1)); return made[made.length - 1]; };
  const variants = { fresh: () => [x, dy], packed: () => [packed(x), packed(dy)],
                     mixed: () => [packed(x), tf.tensor(dys, shape)] };
  for (const [name, inputs] of Object.entries(variants)) {
    const [xIn, dyIn] = inputs();
    const out = tf.engine().runKernel('Relu6Grad', { dy: dyIn, x: xIn });
    gpu.packed[name] = backend === 'webgl' ? tf.backend().texData.get(out.dataId).isPacked === true : null;
    gpu.direct[name] = await read(out);
    if (name === 'mixed') dyIn.dispose();
  }
  let grad;
  [gpu.kernels, grad] = traced(tf, () => gradient(x, dy));
  gpu.grad = await read(grad);
  setGpuKernels(false);
  [gpu.oldKernels, grad] = traced(tf, () => gradient(x, dy));
  gpu.oldGrad = await read(grad);
  setGpuKernels(true);
  gpu.ours = tf.getKernel('Relu6Grad', backend)?.kernelFunc.dreamframe === true;
  tf.dispose([x, dy, ...made]);
  return { cpu, gpu };
}""".replace("/* HELPERS */", HELPERS)


@pytest.fixture(scope="module")
def gpu_kernels_page(gpu_browser, site_url):
    """The page on WebGPU (so that both GPU backends are registered), engine ready."""
    with open_page(gpu_browser) as page:
        page.goto(site_url + "index.html?backend=webgpu&prepare=off")
        page.wait_for_function(GPU_PREPARED, timeout=180_000)
        assert page.evaluate("window.dreamframe.tf.getBackend()") == "webgpu"
        yield page
        # Back to the page's own backend: the model's weights live there.
        page.evaluate("window.dreamframe.tf.setBackend('webgpu')")
        assert page.console_errors == []


def same(got: list, want: list) -> bool:
    """Equal element by element, NaN equal to NaN (0 and -0 equal, as in float compare)."""
    return np.array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64),
                          equal_nan=True)


@pytest.mark.parametrize("shape", [[1, 7, 9, 5], [1, 8, 6, 16], [1003]],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_relu6_gradient_is_one_program_equal_to_cpu_bit_for_bit(gpu_kernels_page, backend,
                                                                 shape):
    """dy where 0 < x <= 6, else 0, NaN where x is NaN: tfjs's gradient, operation for
    operation, so exactly cpu's values, at the edges (0, -0, 6 +- 1 ulp, infinities, NaN)
    and for odd shapes (WebGL's packed texels then hold padding)."""
    result = gpu_kernels_page.evaluate(RELU6, [backend, shape])
    cpu, gpu = result["cpu"], result["gpu"]
    assert gpu["ours"]
    assert same(cpu["grad"], cpu["formula"])
    assert math.isnan(cpu["grad"][11]) and cpu["grad"][:9] == [0, 0, 0, *cpu["grad"][3:7], 0, 0]
    for name, values in gpu["direct"].items():
        assert same(values, cpu["formula"]), name
    assert same(gpu["grad"], cpu["grad"])
    assert same(gpu["oldGrad"], cpu["grad"])
    if backend == "webgl":  # the program follows its inputs' layout: no conversion added
        assert gpu["packed"] == {"fresh": False, "packed": True, "mixed": True}
    assert "Relu6Grad" in gpu["kernels"]
    for generic in ("LessEqual", "Step"):
        assert generic not in gpu["kernels"]
        assert generic in gpu["oldKernels"]  # tfjs's own gradient, as the test would see it


FUSED = """async ([backend, kind, xShape, filterShape, stride, pad, withBias]) => {
  /* HELPERS */
  const { tf, setGpuKernels } = window.dreamframe;
  const depthwise = kind === 'depthwise';
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, stride, 1, pad,
                                                 undefined, depthwise);
  const biasShape = [info.outChannels];
  const read = async (ts) => {
    const out = [];
    for (const t of ts) { out.push(Array.from(await t.data())); t.dispose(); }
    return out;
  };
  const run = async () => {
    const x = tf.tensor(noise(size(xShape), 1), xShape);
    const filter = tf.tensor(noise(size(filterShape), 2), filterShape);
    const bias = withBias ? tf.tensor(noise(info.outChannels, 3), biasShape) : null;
    const w = tf.tensor(noise(size(info.outShape), 4), info.outShape);
    const conv = depthwise ? tf.fused.depthwiseConv2d : tf.fused.conv2d;
    // A mean, not a sum: the only Sum kernels are then the bias gradient's.
    const loss = (x, filter, bias) => tf.mean(tf.mul(conv({ x, filter, bias, strides: stride, pad }), w));
    const all = withBias ? tf.grads((x, f, b) => loss(x, f, b))([x, filter, bias])
                         : tf.grads((x, f) => loss(x, f, null))([x, filter]);
    const inputOnly = tf.grad((v) => loss(v, filter, bias));
    const [kernels, input] = traced(tf, () => inputOnly(x));
    const result = { all: await read(all), input: (await read([input]))[0], kernels };
    tf.dispose([x, filter, bias, w]);
    return result;
  };
  await tf.setBackend('cpu');
  const cpu = await run();
  await tf.setBackend(backend);
  const gpu = await run();
  setGpuKernels(false);
  const old = await run();
  setGpuKernels(true);
  return { cpu, gpu, old };
}""".replace("/* HELPERS */", HELPERS)

FUSED_CASES = [
    # kind, x shape, filter shape, stride, pad, bias: MobileNetV2's linear 1x1 projections,
    # a strided 3x3 with padding, and depthwise ones (linear in no MobileNetV2 layer, but the
    # same custom gradient in tfjs)
    ("conv", [1, 9, 11, 16], [1, 1, 16, 8], 1, "same", True),
    ("conv", [2, 12, 9, 4], [3, 3, 4, 7], 2, "same", True),
    ("conv", [1, 10, 13, 3], [3, 3, 3, 5], 2, "valid", False),
    ("depthwise", [1, 9, 11, 8], [3, 3, 8, 1], 1, "same", True),
    ("depthwise", [1, 11, 10, 4], [3, 3, 4, 1], 2, "same", False),
]
FILTER_KERNELS = {"conv": "Conv2DBackpropFilter", "depthwise": "DepthwiseConv2dNativeBackpropFilter"}


@pytest.mark.parametrize("case", FUSED_CASES, ids=lambda c: f"{c[0]}-{c[2][0]}x{c[2][1]}-s{c[3]}-"
                         f"{c[4]}{'-bias' if c[5] else ''}")
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_a_fused_convolution_computes_only_the_gradients_asked_for(gpu_kernels_page, backend,
                                                                   case):
    """An input gradient runs no filter-gradient kernel and no bias sum; asked for, the
    filter and bias gradients are there and right (tfjs's kernels, tfjs's arguments: the
    same numbers as tfjs's own path, bit for bit, and cpu's up to summation order)."""
    kind, with_bias = case[0], case[5]
    result = gpu_kernels_page.evaluate(FUSED, [backend, *case])
    cpu, gpu, old = result["cpu"], result["gpu"], result["old"]
    assert len(gpu["all"]) == (3 if with_bias else 2)
    assert gpu["all"][1:] == old["all"][1:]  # (input gradients: see the next test)
    assert gpu["input"] == gpu["all"][0]
    assert_close(old["input"], cpu["all"][0], ulps=8)
    for got, want in zip(gpu["all"], cpu["all"], strict=True):
        assert_close(got, want, ulps=8)
        assert np.abs(want).max() > 0
    filter_kernel = FILTER_KERNELS[kind]
    assert filter_kernel not in gpu["kernels"]
    assert "Sum" not in gpu["kernels"]
    assert filter_kernel in old["kernels"]  # what tfjs's own custom gradient runs
    assert ("Sum" in old["kernels"]) == with_bias


INPUT_GRADIENT = """async ([kernel, xShape, filterShape, stride, pad, dilation]) => {
  /* HELPERS */
  const { tf, setGpuKernels } = window.dreamframe;
  const depthwise = kernel.startsWith('Depthwise');
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, stride, dilation, pad,
                                                 undefined, depthwise);
  const attrs = { strides: [stride, stride], pad, inputShape: xShape,
                  ...(depthwise ? { dilations: [dilation, dilation] } : { dataFormat: 'NHWC' }) };
  const run = async () => {
    const dy = tf.tensor(noise(size(info.outShape), 8), info.outShape);
    const filter = tf.tensor(noise(size(filterShape), 9), filterShape);
    const [kernels, out] = traced(tf, () => tf.engine().runKernel(kernel, { dy, filter }, attrs));
    const result = { values: Array.from(await out.data()), shape: out.shape, kernels };
    tf.dispose([dy, filter, out]);
    return result;
  };
  await tf.setBackend('cpu');
  const cpu = await run();
  await tf.setBackend('webgl');
  const ours = await run();
  setGpuKernels(false);
  const old = await run();
  setGpuKernels(true);
  return { cpu, ours, old };
}""".replace("/* HELPERS */", HELPERS)

INPUT_CASES = [
    # kernel, x shape, filter shape, stride, pad, dilation, replaced: 1x1 stride-1 convs and
    # undilated stride-1 depthwise convs with symmetric padding run as forward convolutions;
    # the rest keep tfjs's own kernels (and must still be right)
    ("Conv2DBackpropInput", [1, 9, 11, 8], [1, 1, 8, 6], 1, "same", 1, True),
    ("Conv2DBackpropInput", [2, 7, 5, 16], [1, 1, 16, 24], 1, "valid", 1, True),
    ("Conv2DBackpropInput", [1, 12, 9, 4], [3, 3, 4, 7], 2, "same", 1, False),
    ("Conv2DBackpropInput", [1, 9, 10, 6], [1, 1, 6, 4], 2, "valid", 1, False),
    ("DepthwiseConv2dNativeBackpropInput", [1, 9, 11, 8], [3, 3, 8, 1], 1, "same", 1, True),
    ("DepthwiseConv2dNativeBackpropInput", [2, 10, 7, 12], [3, 3, 12, 1], 1, "same", 2, False),
    ("DepthwiseConv2dNativeBackpropInput", [1, 10, 13, 8], [3, 3, 8, 1], 1, "valid", 1, False),
    ("DepthwiseConv2dNativeBackpropInput", [1, 11, 10, 4], [3, 3, 4, 1], 2, "same", 1, False),
]
FORWARD = {"Conv2DBackpropInput": "Conv2D",
           "DepthwiseConv2dNativeBackpropInput": "DepthwiseConv2dNative"}


@pytest.mark.parametrize("case", INPUT_CASES, ids=lambda c: f"{c[0]}-{c[2][0]}x{c[2][1]}-s{c[3]}-"
                         f"{c[4]}-d{c[5]}")
def test_webgl_input_gradients_as_forward_convolutions_match_cpu(gpu_kernels_page, case):
    """WebGL's 1x1 and stride-1 depthwise input gradients, as the conv of dy with the
    transposed or flipped filter, against cpu's kernel, up to summation order."""
    replaced = case[-1]
    result = gpu_kernels_page.evaluate(INPUT_GRADIENT, list(case[:-1]))
    cpu, ours, old = result["cpu"], result["ours"], result["old"]
    assert ours["shape"] == old["shape"] == cpu["shape"]
    assert_close(ours["values"], cpu["values"], ulps=8)
    assert_close(old["values"], cpu["values"], ulps=8)
    assert (FORWARD[case[0]] in ours["kernels"]) == replaced
    assert FORWARD[case[0]] not in old["kernels"]  # tfjs's own program
    if not replaced:
        assert ours["values"] == old["values"]


MODEL = """async ([backend, both]) => {
  /* HELPERS */
  const { tf, loaded: { manifest }, setGpuKernels } = window.dreamframe;
  const shape = [1, 67, 83, 3];
  await tf.setBackend(backend);
  // The page's model again, its weights on this backend (no warm-up at another size).
  const model = await tf.loadGraphModel(`models/${manifest.model.name}/${manifest.model.file}`);
  const nodes = manifest.outputs.map((o) => o.node);
  const loss = (image) => tf.addN(model.execute(image, nodes).map((t) => tf.mean(t)));
  const grad = async () => {
    const x = tf.tensor(noise(size(shape), 7), shape);
    const [kernels, g] = traced(tf, () => tf.grad(loss)(x));
    const out = { values: Array.from(await g.data()), kernels };
    tf.dispose([g, x]);
    return out;
  };
  const result = { backend: tf.getBackend(), gpu: await grad() };
  if (both) {
    setGpuKernels(false);
    result.old = await grad();
    setGpuKernels(true);
  }
  model.dispose();
  return result;
}""".replace("/* HELPERS */", HELPERS)


@pytest.fixture(scope="module")
def model_gradient_cpu(gpu_kernels_page):
    """The model's input gradient on a random image, on the cpu backend (about 10 s)."""
    return gpu_kernels_page.evaluate(MODEL, ["cpu", False])["gpu"]["values"]


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_the_models_gradient_runs_no_filter_gradient_and_no_generic_relu6_chain(
        gpu_kernels_page, model_gradient_cpu, backend):
    """The page's model, every objective layer: the input gradient as on cpu (as
    test_gpu_backends.py checks on photos), without the kernels a dream throws away."""
    both = backend == "webgl"  # tfjs's own path too (its WebGPU pipelines take 15 s more)
    result = gpu_kernels_page.evaluate(MODEL, [backend, both])
    assert result["backend"] == backend
    gpu = result["gpu"]
    want = np.asarray(model_gradient_cpu)
    for got in [gpu["values"]] + ([result["old"]["values"]] if both else []):
        error = np.linalg.norm(np.asarray(got) - want) / np.linalg.norm(want)
        assert error <= 1e-4, error
    for wasted in ("Conv2DBackpropFilter", "DepthwiseConv2dNativeBackpropFilter", "Step",
                   "LessEqual", "Sum"):
        assert wasted not in gpu["kernels"], wasted
    assert gpu["kernels"].count("Relu6Grad") == gpu["kernels"].count("Relu6") >= 25
    if both:  # what tfjs's own path runs in the same gradient: the chain per ReLU6, a
        # filter gradient per linear (fused) projection
        old = result["old"]["kernels"]
        assert old.count("Step") == old.count("LessEqual") == old.count("Relu6") >= 25
        assert old.count("Conv2DBackpropFilter") == old.count("FusedConv2D") >= 12
