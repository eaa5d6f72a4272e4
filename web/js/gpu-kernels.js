// Less work in a dream's gradient step on the GPU backends (tfjs 4.22 WebGL and WebGPU):
//
// - Filter and bias gradients not computed. The graph model's convolutions without an
//   activation (MobileNetV2's linear "project" layers) run as fused convolutions, whose
//   custom gradient (tfjs-core ops/fused/conv2d.js, depthwise_conv2d.js) computes the input,
//   filter AND bias gradients eagerly, although the tape asks only for what leads to the
//   image: 12-15 Conv2DBackpropFilter and bias sums (with their transposes, reshapes and
//   unpacking programs) per MobileNetV2 step, all thrown away. Here the tape node of such a
//   convolution gets the same three gradients as functions instead, which the tape calls
//   only for the inputs it needs: a dream computes none of the filter or bias gradients,
//   and `tf.grad` with respect to a filter or a bias still gets them, computed exactly as
//   tfjs does (same kernels, same arguments). Nothing else changes: the forward kernels and
//   every backend's kernels stay tfjs's own. (The wasm backend, whose filter-gradient kernels
//   tfjs lacks, returns zeros for them instead: web/js/wasm-kernels.js.) The attributes a
//   gradient needs (strides, padding) are not on the tape node of a custom gradient, so the
//   fused kernels are wrapped to note them, by output, as they run.
// - ReLU6's gradient as one program (`Relu6Grad`): tfjs's generic gradient is
//   mul(dy, cast(mul(lessEqual(x, 6), step(x)))): a scalar upload, LessEqual, Step, two
//   Multiplies, and on WebGL an unpack before Step (which has no packed program) and a pack
//   after it: about six programs per ReLU6, 25 ReLU6s per step.
//
// Not taken: WebGPU's "tuned" transposed convolution (WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE
// false: Conv2DDerInputMMProgram, a matrix product, for Conv2DBackpropInput). Its gradient
// matches, but the step was slower with it on the only adapter here (Chromium's software
// one); the flag stays tfjs's, and the benchmark measures both (bench/webgl.py).
//
// Registered for 'webgl' and 'webgpu' only (kernel registrations are per backend, and an
// override once broke WebGL shader compilation); the Relu6 gradient and the tape hook are
// global by nature and route by the backend that runs. `setGpuKernels(false)` brings back
// tfjs's own path at run time, for the benchmark's before/after comparison (bench/webgl.py).
// Each part is tested against the cpu backend (tests/test_gpu_kernels.py).

const GPU_BACKENDS = ['webgl', 'webgpu'];
// The scope names tfjs gives the tape nodes of its fused ops' custom gradients.
const FUSED_SCOPES = {
  fusedConv2d__op: { backpropInput: 'Conv2DBackpropInput', backpropFilter: 'Conv2DBackpropFilter' },
  fusedDepthwiseConv2d__op: {
    backpropInput: 'DepthwiseConv2dNativeBackpropInput',
    backpropFilter: 'DepthwiseConv2dNativeBackpropFilter',
  },
};
const FUSED_KERNELS = ['FusedConv2D', 'FusedDepthwiseConv2D'];

let enabled = true;
// Output dataId of a fused convolution -> its attributes, noted by the wrapped kernels.
const fusedAttrs = new WeakMap();

// Whether this module's kernels and gradients are in use (true by default).
export function gpuKernelsEnabled() {
  return enabled;
}

// true: this module's path; false: tfjs's own, as before it (for comparisons).
export function setGpuKernels(on) {
  enabled = Boolean(on);
}

// ---- ReLU6 gradient -----------------------------------------------------------------------
// dy * mask, mask = (x <= 6) * step(x), step(x) = x > 0 ? 1 : 0 and NaN for NaN: tfjs's own
// gradient, operation for operation, so the result is the same bit for bit (NaN included).

const WEBGL_RELU6_GRAD = `
  void main() {
    float dy = getAAtOutCoords();
    float x = getBAtOutCoords();
    float stepX = isnan(x) ? x : (x > 0.0 ? 1.0 : 0.0);
    setOutput(dy * ((x <= 6.0 ? 1.0 : 0.0) * stepX));
  }
`;
const WEBGL_RELU6_GRAD_PACKED = `
  void main() {
    vec4 dy = getAAtOutCoords();
    vec4 x = getBAtOutCoords();
    vec4 stepX = vec4(greaterThan(x, vec4(0.0)));
    bvec4 nan = isnan(x);
    stepX.r = nan.r ? x.r : stepX.r;
    stepX.g = nan.g ? x.g : stepX.g;
    stepX.b = nan.b ? x.b : stepX.b;
    stepX.a = nan.a ? x.a : stepX.a;
    setOutput(dy * (vec4(lessThanEqual(x, vec4(6.0))) * stepX));
  }
`;

// Packed when either input is packed (as tfjs's own binary programs are): a packed program
// given an unpacked input packs it first, and the other way round, so this costs at most
// the one conversion the mixed inputs need.
function relu6GradWebgl(tf, { inputs: { dy, x }, backend }) {
  const packed = tf.env().getBool('WEBGL_PACK_BINARY_OPERATIONS')
    && (backend.texData.get(dy.dataId).isPacked || backend.texData.get(x.dataId).isPacked);
  const program = {
    variableNames: ['A', 'B'],
    outputShape: x.shape.slice(),
    packedInputs: packed,
    packedOutput: packed,
    // Unpacked with shape uniforms, tfjs 4.22's generated sampler for an odd-channel input
    // failed to compile ("Failed to compile fragment shader", 1x7x9x5): packed only.
    enableShapeUniforms: packed && tf.env().getBool('WEBGL_USE_SHAPES_UNIFORMS')
      && x.shape.length <= 4,
    userCode: packed ? WEBGL_RELU6_GRAD_PACKED : WEBGL_RELU6_GRAD,
  };
  return backend.runWebGLProgram(program, [dy, x], 'float32');
}

const WGSL_RELU6_GRAD = (type, isnan) => `
  fn relu6Grad(dy : ${type}, x : ${type}) -> ${type} {
    let stepX = select(${type}(0.0), ${type}(1.0), x > ${type}(0.0));
    let mask = select(${type}(0.0), ${type}(1.0), x <= ${type}(6.0)) * select(stepX, x, ${isnan}(x));
    return dy * mask;
  }
`;

// One flat pass, four values per thread when the size allows (as tfjs's binary programs).
function relu6GradWebgpu(tf, { inputs: { dy, x }, backend }) {
  const size = tf.util.sizeFromShape(x.shape);
  const component = size % 4 === 0 ? 4 : 1;
  const type = component === 4 ? 'vec4<f32>' : 'f32';
  const workgroupSize = [128, 1, 1];
  const program = {
    variableNames: ['A', 'B'],
    outputShape: x.shape.slice(),
    size: true,
    outputComponent: component,
    variableComponents: [component, component],
    workgroupSize,
    dispatchLayout: { x: x.shape.map((_, i) => i) },
    dispatch: [Math.ceil(size / (workgroupSize[0] * component)), 1, 1],
    shaderKey: `dreamframe_relu6grad_${component}`,
    getUserCode: () => `
      ${WGSL_RELU6_GRAD(type, component === 4 ? 'isnanVec4' : 'isnan')}
      fn main(index : i32) {
        if (index < uniforms.size) {
          setOutputAtIndex(index, relu6Grad(getAByOutputIndex(index), getBByOutputIndex(index)));
        }
      }
    `,
  };
  return backend.runWebGPUProgram(program, [dy, x], 'float32');
}

const RELU6_GRAD = { webgl: relu6GradWebgl, webgpu: relu6GradWebgpu };

// Relu6's gradient goes to Relu6Grad on the GPU backends while enabled; everything else
// goes to the gradient registered before (tfjs's, or the wasm router of wasm-kernels.js).
function registerRelu6Gradient(tf) {
  const previous = tf.getGradient('Relu6');
  if (!previous || previous.gradFunc.dreamframeGpu) return false;
  const gradFunc = (dy, saved, attrs) => {
    if (!enabled || !GPU_BACKENDS.includes(tf.getBackend())) {
      return previous.gradFunc(dy, saved, attrs);
    }
    const [x] = saved;
    return { x: () => tf.engine().runKernel('Relu6Grad', { dy, x }) };
  };
  gradFunc.dreamframeGpu = true;
  tf.registerGradient({ ...previous, gradFunc });
  return true;
}

// ---- WebGL: input gradients as the forward programs -----------------------------------------
// tfjs's WebGL input gradients are programs of their own, slower than the forward
// convolutions by 2-3x on the same data (timed per draw here): for a 1x1 stride-1 conv
// (MobileNetV2's expansions and projections) Conv2DDerInputPackedProgram, where the forward
// pass is a packed matrix product; for an undilated stride-1 depthwise conv with symmetric
// padding an unpacked program, so both its inputs (packed, as everything around it) are
// unpacked first, the filter in every step. Their gradients are the forward programs
// themselves: the 1x1 conv of dy with the transposed filter, and the same-padded depthwise
// conv of dy with the spatially flipped filter (the transpose or flip: one small program).
// Other shapes keep tfjs's kernels. (The wasm backend does the same: web/js/wasm-kernels.js.)

function zeroPadding({ top, bottom, left, right }) {
  return top === 0 && bottom === 0 && left === 0 && right === 0;
}

function conv2dBackpropInputWebgl(tf, original, args) {
  const { inputs: { dy, filter }, attrs } = args;
  if (!enabled || !(dy instanceof tf.Tensor) || !(filter instanceof tf.Tensor)
      || (attrs.dataFormat ?? 'NHWC') !== 'NHWC') {
    return original(args);
  }
  const info = tf.backend_util.computeConv2DInfo(attrs.inputShape, filter.shape, attrs.strides,
    1, attrs.pad, attrs.dimRoundingMode);
  if (info.filterHeight !== 1 || info.filterWidth !== 1 || info.strideHeight !== 1
      || info.strideWidth !== 1 || !zeroPadding(info.padInfo)) {
    return original(args);
  }
  return tf.tidy(() => tf.conv2d(dy, tf.transpose(filter, [0, 1, 3, 2]), 1, 'valid'));
}

function depthwiseBackpropInputWebgl(tf, original, args) {
  const { inputs: { dy, filter }, attrs } = args;
  if (!enabled || !(dy instanceof tf.Tensor) || !(filter instanceof tf.Tensor)
      || filter.shape[3] !== 1) {
    return original(args);
  }
  const info = tf.backend_util.computeConv2DInfo(attrs.inputShape, filter.shape, attrs.strides,
    attrs.dilations, attrs.pad, attrs.dimRoundingMode, true);
  const { top, bottom, left, right } = info.padInfo;
  const symmetric = top === bottom && left === right && 2 * top === info.effectiveFilterHeight - 1
    && 2 * left === info.effectiveFilterWidth - 1;
  // (Not for dilated filters: that way their gradient came out wrong here.)
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || !symmetric
      || info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    return original(args);
  }
  return tf.tidy(() => tf.depthwiseConv2d(dy, tf.reverse(filter, [0, 1]), 1, 'same'));
}

const WEBGL_REPLACED = {
  Conv2DBackpropInput: conv2dBackpropInputWebgl,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInputWebgl,
};

// ---- Fused convolutions: gradients only where the tape asks ---------------------------------

// tfjs's getFusedBiasGradient: dy summed over the axes the bias was broadcast along.
function biasGradient(tf, bias, dy) {
  const axes = tf.backend_util.getReductionAxes(bias.shape, dy.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(dy, axes) : dy, bias.shape);
}

// The gradients of a linear fused convolution, each computed only when called, with the
// kernels and arguments of tfjs's own custom gradient (which passes the ordinary
// convolution's kernels no dimRoundingMode).
function lazyFusedGradient(tf, scope, attrs) {
  const { backpropInput, backpropFilter } = FUSED_SCOPES[scope];
  const depthwise = scope === 'fusedDepthwiseConv2d__op';
  return (dy, saved) => {
    const [filter, x, , bias] = saved;
    const common = depthwise
      ? { strides: attrs.strides, pad: attrs.pad, dimRoundingMode: attrs.dimRoundingMode,
        dilations: attrs.dilations }
      : { strides: attrs.strides, pad: attrs.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
    const grads = {
      0: () => tf.engine().runKernel(backpropInput, { dy, filter },
        { ...common, inputShape: x.shape }),
      1: () => tf.engine().runKernel(backpropFilter, { x, dy },
        { ...common, filterShape: filter.shape }),
    };
    if (bias) grads[2] = () => biasGradient(tf, bias, dy);
    return grads;
  };
}

// Wraps tfjs's fused kernel on `backend` to note each call's attributes by its output.
function noteAttrs(kernel) {
  const kernelFunc = (args) => {
    const out = kernel.kernelFunc(args);
    fusedAttrs.set(out.dataId, args.attrs);
    return out;
  };
  kernelFunc.dreamframe = true;
  return { ...kernel, kernelFunc };
}

// The tape records a custom gradient's node with `engine.addTapeNode`; for a linear fused
// convolution on a GPU backend its eager gradient function is replaced by the lazy one.
function hookTape(tf) {
  const engine = tf.engine();
  if (engine.addTapeNode.dreamframe) return;
  const original = engine.addTapeNode;
  const addTapeNode = function addTapeNode(kernelName, inputs, outputs, gradientsFunc, saved, attrs) {
    let func = gradientsFunc;
    if (enabled && func && kernelName in FUSED_SCOPES && GPU_BACKENDS.includes(this.backendName)) {
      // (4D outputs only: a 3D input's result is reshaped, and its dy with it; tfjs's own
      // gradient fails on those anyway, in 4.22.)
      const noted = outputs.length === 1 && outputs[0].rank === 4
        ? fusedAttrs.get(outputs[0].dataId) : undefined;
      const known = saved.length === 3 || saved.length === 4;
      if (noted && known && (noted.activation ?? 'linear') === 'linear' && !noted.preluActivationWeights) {
        func = lazyFusedGradient(tf, kernelName, noted);
      }
    }
    return original.call(this, kernelName, inputs, outputs, func, saved, attrs);
  };
  addTapeNode.dreamframe = true;
  engine.addTapeNode = addTapeNode;
}

// Registers the kernels for each GPU backend whose bundle is loaded (WebGPU's is loaded only
// where it can run), routes Relu6's gradient, hooks the tape. Safe to call again, e.g. once
// a backend has been chosen; returns what it added.
export function registerGpuKernels(tf) {
  const added = [];
  if (registerRelu6Gradient(tf)) added.push('Relu6 gradient');
  hookTape(tf);
  for (const backendName of GPU_BACKENDS) {
    if (!tf.getKernel('FusedConv2D', backendName)) continue; // bundle not loaded
    if (!tf.getKernel('Relu6Grad', backendName)) {
      const impl = RELU6_GRAD[backendName];
      const kernelFunc = (args) => impl(tf, args);
      kernelFunc.dreamframe = true;
      tf.registerKernel({ kernelName: 'Relu6Grad', backendName, kernelFunc });
      added.push(`Relu6Grad (${backendName})`);
    }
    for (const [kernelName, impl] of Object.entries(backendName === 'webgl' ? WEBGL_REPLACED : {})) {
      const existing = tf.getKernel(kernelName, backendName);
      if (!existing || existing.kernelFunc.dreamframe) continue;
      const kernelFunc = (args) => impl(tf, existing.kernelFunc, args);
      kernelFunc.dreamframe = true;
      tf.unregisterKernel(kernelName, backendName);
      tf.registerKernel({ ...existing, kernelName, backendName, kernelFunc });
      added.push(`${kernelName} (${backendName})`);
    }
    for (const kernelName of FUSED_KERNELS) {
      const existing = tf.getKernel(kernelName, backendName);
      if (!existing || existing.kernelFunc.dreamframe) continue;
      tf.unregisterKernel(kernelName, backendName);
      tf.registerKernel({ ...noteAttrs(existing), kernelName, backendName });
      added.push(`${kernelName} (${backendName})`);
    }
  }
  return added;
}
