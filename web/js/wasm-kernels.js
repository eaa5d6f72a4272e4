// Kernels for the tfjs 4.22 wasm backend that a dream's gradient step needs: missing ones,
// and replacements for ones that run slowly there. Written with tfjs ops that wasm runs fast,
// or as single passes over the wasm heap.
//
// DeepDream needs the gradient of the loss with respect to the image. The graph model's fused
// convolutions have a custom gradient that asks for the filter gradient too, so these kernels
// run in every step although only the input gradients are used:
//   DepthwiseConv2dNativeBackpropInput   dx of a depthwise conv (missing in wasm): depthwise
//                                        convs (XNNPACK) of dy with the flipped filter, one
//                                        per stride phase when strided (see byPhases)
//   Conv2DBackpropInput                  dx of a conv (wasm's own is a slow generic loop): a
//                                        conv for 1x1 convs, else one conv of dy with the
//                                        flipped filter's stride phases (byPhases)
//   DepthwiseConv2dNativeBackpropFilter  dw (missing in wasm): one strided slice, multiply and
//   Conv2DBackpropFilter                 sum (or matMul) per filter tap
//   PhaseInterleave (new name, wasm)     interleaves and crops those phases, in one pass
//   Relu6Grad (new name, wasm only)      dx of relu6 in one pass over the heap, as a SIMD
//                                        loop (wasm-simd.js); tfjs's generic gradient takes
//                                        five kernels (LessEqual with a broadcast scalar,
//                                        Step, two Casts, two Multiplies), a third of a step
//   Identity                             shares the input's memory (with a reference, as
//                                        wasm's own Reshape does and the cpu backend's
//                                        Identity does) instead of copying it: tf.clone and
//                                        cast-to-the-same-dtype run hundreds of times a step
//   Slice                                copies whole runs of contiguous memory; wasm's own
//                                        first copies the entire input out of the heap, then
//                                        copies one innermost row (3 floats for an image) at
//                                        a time: a roll of a 512 px image took 4 ms a slice
// The filter gradients are thrown away by a dream, so by default they are returned as zeros
// without any work (`setFilterGradients('zero')`); 'exact' computes them, for other uses
// and for the tests. Registered for 'wasm' only: kernel registrations are per backend, and
// an override on another backend could change what already works there. Each is tested
// against the cpu backend's own kernel (tests/test_wasm_kernels.py).

import { simdRelu6Grad } from './wasm-simd.js';

let filterGradients = 'zero';

// 'zero' (a dream's default: nobody reads them) or 'exact'.
export function setFilterGradients(mode) {
  if (mode !== 'zero' && mode !== 'exact') {
    throw new Error(`unknown filter gradient mode ${mode}; valid modes: zero, exact`);
  }
  filterGradients = mode;
}

function convInfo(tf, xShape, filterShape, attrs, depthwise) {
  return tf.backend_util.computeConv2DInfo(
    xShape, filterShape, attrs.strides, attrs.dilations ?? 1, attrs.pad,
    attrs.dimRoundingMode, depthwise, 'channelsLast');
}

function padInput(tf, x, info) {
  const { top, bottom, left, right } = info.padInfo;
  return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]);
}

// The [batch, outH, outW, channels] window of the padded input that filter tap (i, j) sees.
function tap(tf, xPadded, info, i, j) {
  const y = i * info.dilationHeight;
  const x = j * info.dilationWidth;
  const [batch, , , channels] = xPadded.shape;
  return tf.stridedSlice(
    xPadded, [0, y, x, 0],
    [batch, y + (info.outHeight - 1) * info.strideHeight + 1,
      x + (info.outWidth - 1) * info.strideWidth + 1, channels],
    [1, info.strideHeight, info.strideWidth, 1]);
}

// The input gradient of a strided conv, by phases (the sub-pixel form of a transposed
// convolution): input pixel s*q + r (r < s, in the padded input) receives dy[q - m] through
// filter tap r + s*m only, so each phase r is a stride-1 'valid' conv of dy (padded by M - 1
// in front, M = ceil(K / s) taps) with the taps of that phase, flipped. PhaseInterleave then
// puts the phases' pixels in place and crops the forward pass's padding off. Against
// spreading dy with zeros and convolving (what tfjs does, and this file did), that is s*s
// times less arithmetic and memory.
//
// `phases(padded, geometry)` makes the convs ([one] with s*s channel groups, or one per phase)
// from geometry.taps(jh, jw, rh, rw): phase (rh, rw)'s tap (jh, jw) as the forward filter's
// [th, tw], or -1 where it falls outside the filter or between dilated taps.
function byPhases(tf, dy, info, phases) {
  const sH = info.strideHeight;
  const sW = info.strideWidth;
  if (sH !== sW) throw new Error(`input gradient with unequal strides ${sH}x${sW} is not supported`);
  const kH = info.effectiveFilterHeight;
  const kW = info.effectiveFilterWidth;
  const mH = Math.ceil(kH / sH);
  const mW = Math.ceil(kW / sW);
  const { top, left } = info.padInfo;
  const qH = Math.ceil((top + info.inHeight) / sH);
  const qW = Math.ceil((left + info.inWidth) / sW);
  const padded = tf.pad(dy, [[0, 0], [mH - 1, Math.max(0, qH - info.outHeight)],
    [mW - 1, Math.max(0, qW - info.outWidth)], [0, 0]]);
  const tapOf = (e, dilation, k) => (e < k && e % dilation === 0 ? e / dilation : -1);
  const taps = (jh, jw, rh, rw) => [
    tapOf(rh + sH * (mH - 1 - jh), info.dilationHeight, kH),
    tapOf(rw + sW * (mW - 1 - jw), info.dilationWidth, kW)];
  const outputs = phases(padded, { mH, mW, sH, sW, taps });
  if (sH === 1) {
    const [full] = outputs;
    if (top === 0 && left === 0 && full.shape[1] === info.inHeight
        && full.shape[2] === info.inWidth) {
      return full;
    }
    return tf.slice(full, [0, top, left, 0], [-1, info.inHeight, info.inWidth, -1]);
  }
  if (outputs.length === 1) {
    // One conv's s*s channel groups: [b*H, W, sH, sW*C] -> [b*H, sH, W, sW*C] is the
    // interleave, a transpose that wasm runs fast however few the channels (3 for the
    // image), then the crop.
    const [grouped] = outputs;
    const [batch, height, width] = grouped.shape;
    const channels = info.inChannels;
    const full = tf.reshape(tf.transpose(
      tf.reshape(grouped, [batch * height, width, sH, sW * channels]), [0, 2, 1, 3]),
    [batch, height * sH, width * sW, channels]);
    return tf.slice(full, [0, top, left, 0], [-1, info.inHeight, info.inWidth, -1]);
  }
  const inputs = Object.fromEntries(outputs.map((t, i) => [`phase${i}`, t]));
  return tf.engine().runKernel('PhaseInterleave', inputs, {
    strides: [sH, sW], crop: [top, left],
    shape: [dy.shape[0], info.inHeight, info.inWidth, info.inChannels],
  });
}

// The input gradient from its stride phases (one tensor each: phase0, phase1, ...), cropped:
// out[b, y, x] = phase (Y % sH, X % sW) at [b, Y / sH, X / sW], Y = y + crop[0], X = x +
// crop[1]. In one pass, copying each pixel's channels as one run: wasm's own DepthToSpace is
// a generic loop (60 ns a value here, 0.4 s for one layer), and a Concat before it would be
// another pass.
function phaseInterleave({ inputs, attrs: { strides: [sH, sW], crop: [top, left], shape },
  backend }) {
  const out = makeOutput(backend, shape, 'float32');
  // Copies within one view of the whole heap (made after the output, see makeOutput): a
  // subarray per pixel would allocate an object each, 3x slower.
  const heap = backend.wasm.HEAPF32;
  const start = (info) => backend.dataIdMap.get(info.dataId).memoryOffset / 4;
  const sources = Array.from({ length: sH * sW }, (_, i) => start(inputs[`phase${i}`]));
  const [batch, height, width, channels] = shape;
  const [, phaseHeight, phaseWidth] = inputs.phase0.shape;
  let at = start(out);
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < height; y++) {
      const row = y + top;
      const rowBase = (b * phaseHeight + Math.floor(row / sH)) * phaseWidth;
      const rowPhase = (row % sH) * sW;
      for (let x = 0; x < width; x++, at += channels) {
        const column = x + left;
        const from = sources[rowPhase + (column % sW)]
          + (rowBase + Math.floor(column / sW)) * channels;
        heap.copyWithin(at, from, from + channels);
      }
    }
  }
  return out;
}

// The phases' filters as one array, [mH, mW, inChannels, phase * outChannels + o] (the
// channel order DepthToSpace reads), for the gradient's conv: its input is dy, its output
// the input gradient. `read(th, tw, i, o)` is the forward filter's tap (th, tw) from forward
// output channel i to forward input channel o; taps outside the filter or between dilated
// taps are zero.
function phaseFilter({ mH, mW, sH, sW, taps }, inChannels, outChannels, read) {
  const phaseCount = sH * sW;
  const values = new Float32Array(mH * mW * inChannels * phaseCount * outChannels);
  let at = 0;
  for (let jh = 0; jh < mH; jh++) {
    for (let jw = 0; jw < mW; jw++) {
      for (let i = 0; i < inChannels; i++) {
        for (let rh = 0; rh < sH; rh++) {
          for (let rw = 0; rw < sW; rw++) {
            const [th, tw] = taps(jh, jw, rh, rw);
            for (let o = 0; o < outChannels; o++, at++) {
              values[at] = th < 0 || tw < 0 ? 0 : read(th, tw, i, o);
            }
          }
        }
      }
    }
  }
  return values;
}

function checkMultiplier(filterShape) {
  if (filterShape[3] !== 1) {
    throw new Error(`depthwise gradient supports channel multiplier 1, got ${filterShape[3]}`);
  }
}

function depthwiseBackpropInput(tf, { inputs, attrs }) {
  const { dy, filter } = inputs;
  checkMultiplier(filter.shape);
  return tf.tidy(() => {
    const info = convInfo(tf, attrs.inputShape, filter.shape, attrs, true);
    const { top, left } = info.padInfo;
    const grad = readTensor(tf, dy);
    const weights = readTensor(tf, filter);
    const symmetric = top === info.padInfo.bottom && left === info.padInfo.right
      && 2 * top === info.effectiveFilterHeight - 1 && 2 * left === info.effectiveFilterWidth - 1;
    if (info.strideHeight === 1 && info.strideWidth === 1 && symmetric) {
      // Stride 1, 'same' padding: the gradient is the same-padded conv with the flipped
      // filter; no padding or crop needed (most of MobileNetV2's layers).
      return tf.depthwiseConv2d(grad, tf.reverse(weights, [0, 1]), 1, 'same', 'NHWC',
        [info.dilationHeight, info.dilationWidth]);
    }
    // One depthwise conv per phase (channel multiplier 1 each), concatenated phase-major.
    const [, kW, channels] = filter.shape;
    const w = heapCopy(tf, filter);
    return byPhases(tf, grad, info, (padded, phases) => {
      const perPhase = [];
      for (let rh = 0; rh < phases.sH; rh++) {
        for (let rw = 0; rw < phases.sW; rw++) {
          const one = { ...phases, sH: 1, sW: 1, taps: (jh, jw) => phases.taps(jh, jw, rh, rw) };
          const values = phaseFilter(one, channels, 1,
            (th, tw, c) => w[(th * kW + tw) * channels + c]);
          perPhase.push(tf.depthwiseConv2d(padded,
            tf.tensor4d(values, [phases.mH, phases.mW, channels, 1]), 1, 'valid'));
        }
      }
      return perPhase;
    });
  });
}

function depthwiseBackpropFilter(tf, { inputs, attrs }) {
  const { x, dy } = inputs;
  checkMultiplier(attrs.filterShape);
  if (filterGradients === 'zero') return tf.zeros(attrs.filterShape);
  return tf.tidy(() => {
    const info = convInfo(tf, x.shape, attrs.filterShape, attrs, true);
    const xPadded = padInput(tf, readTensor(tf, x), info);
    const grad = readTensor(tf, dy);
    const taps = [];
    for (let i = 0; i < info.filterHeight; i++) {
      for (let j = 0; j < info.filterWidth; j++) {
        taps.push(tf.sum(tf.mul(tap(tf, xPadded, info, i, j), grad), [0, 1, 2]));
      }
    }
    return tf.reshape(tf.stack(taps), attrs.filterShape);
  });
}

function conv2dBackpropFilter(tf, { inputs, attrs }) {
  const { x, dy } = inputs;
  if (filterGradients === 'zero') return tf.zeros(attrs.filterShape);
  return tf.tidy(() => {
    const info = convInfo(tf, x.shape, attrs.filterShape, attrs, false);
    const xPadded = padInput(tf, readTensor(tf, x), info);
    const grad = tf.reshape(readTensor(tf, dy), [-1, info.outChannels]);
    const taps = [];
    for (let i = 0; i < info.filterHeight; i++) {
      for (let j = 0; j < info.filterWidth; j++) {
        const window = tf.reshape(tap(tf, xPadded, info, i, j), [-1, info.inChannels]);
        taps.push(tf.matMul(window, grad, true, false));
      }
    }
    return tf.reshape(tf.stack(taps), attrs.filterShape);
  });
}

function conv2dBackpropInput(tf, { inputs, attrs }) {
  const { dy, filter } = inputs;
  if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropInput: only NHWC is supported');
  return tf.tidy(() => {
    const info = convInfo(tf, attrs.inputShape, filter.shape, attrs, false);
    const grad = readTensor(tf, dy);
    const weights = readTensor(tf, filter);
    const [kH, kW, inC, outC] = filter.shape;
    const { top, left } = info.padInfo;
    if (kH === 1 && kW === 1 && info.strideHeight === 1 && info.strideWidth === 1
        && top === 0 && left === 0) {
      // A 1x1 conv's input gradient is the 1x1 conv of dy with the transposed filter; as a
      // conv it runs on XNNPACK, 5x faster here than the same product as a BatchMatMul.
      return tf.conv2d(grad, tf.reshape(tf.transpose(tf.reshape(weights, [inC, outC])),
        [1, 1, outC, inC]), 1, 'valid');
    }
    const w = heapCopy(tf, filter);
    return byPhases(tf, grad, info, (padded, phases) => {
      const values = phaseFilter(phases, outC, inC,
        (th, tw, o, c) => w[((th * kW + tw) * inC + c) * outC + o]);
      return [tf.conv2d(padded, tf.tensor4d(values,
        [phases.mH, phases.mW, outC, phases.sH * phases.sW * inC]), 1, 'valid')];
    });
  });
}

// backend.makeOutput, or an Error when the heap is full. wasm's malloc then returns 0, and a
// result written there overwrites the module's own memory: the next dream then failed with
// "table index is out of bounds" instead of running out of memory cleanly.
function makeOutput(backend, shape, dtype) {
  const out = backend.makeOutput(shape, dtype);
  const size = shape.reduce((a, b) => a * b, 1);
  if (size > 0 && backend.dataIdMap.get(out.dataId).memoryOffset === 0) {
    backend.disposeData(out.dataId);
    throw new Error(`out of memory: no room left in the wasm heap for ${size} values`);
  }
  return out;
}

// dy where 0 < x <= 6, else 0: tfjs's own Relu6 gradient (step(x) * (x <= 6)), in one pass:
// a WebAssembly SIMD loop over the heap (wasm-simd.js) where it runs, else in JavaScript,
// branch-free: dy's bits are ANDed with an all-ones or all-zeros mask (3x faster here than
// a conditional, whose branch a photo's activations make unpredictable).
// The output is made first: making it may grow the heap, which detaches older views of it.
function relu6Grad({ inputs, backend }) {
  const { dy, x } = inputs;
  const out = makeOutput(backend, x.shape, 'float32');
  const count = tfSize(x.shape);
  const simd = simdRelu6Grad(backend);
  let from = 0;
  if (simd) {
    const offset = (info) => backend.dataIdMap.get(info.dataId).memoryOffset;
    simd(offset(x), offset(dy), offset(out), count);
    from = count - (count % 4);
  }
  const xs = backend.typedArrayFromHeap(x);
  const bits = (info) => {
    const floats = backend.typedArrayFromHeap(info);
    return new Int32Array(floats.buffer, floats.byteOffset, floats.length);
  };
  const grads = bits(dy);
  const result = bits(out);
  for (let i = from; i < count; i++) {
    const v = xs[i];
    result[i] = grads[i] & -((v > 0) & (v <= 6));
  }
  return out;
}

function tfSize(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

// A new reference to the same memory: tensors are immutable, and the wasm backend counts
// references per buffer (disposeData frees at zero).
function sharedIdentity({ inputs, backend }) {
  const { x } = inputs;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

// x[begin : begin + size] as runs of contiguous memory: the innermost axes taken whole are
// one run with the first axis that is not. Strings go to wasm's own kernel (`original`).
function slice(tf, original, args) {
  const { inputs: { x }, attrs: { begin, size }, backend } = args;
  const rank = x.shape.length;
  if (x.dtype === 'string' || rank === 0) return original(args);
  const [start, extent] = tf.slice_util.parseSliceParams(x, begin, size);
  const out = makeOutput(backend, extent, x.dtype);
  if (tf.util.sizeFromShape(extent) === 0) return out;
  const source = backend.typedArrayFromHeap(x); // views, made after the output (see above)
  const target = backend.typedArrayFromHeap(out);
  const strides = [...tf.util.computeStrides(x.shape), 1];
  let axis = rank - 1;
  let run = 1;
  while (axis > 0 && start[axis] === 0 && extent[axis] === x.shape[axis]) {
    run *= x.shape[axis];
    axis -= 1;
  }
  run *= extent[axis];
  const index = new Array(axis).fill(0); // position among the runs, over axes before `axis`
  const runs = tf.util.sizeFromShape(extent.slice(0, axis));
  for (let n = 0, at = 0; n < runs; n++, at += run) {
    let offset = start[axis] * strides[axis];
    for (let i = 0; i < axis; i++) offset += (start[i] + index[i]) * strides[i];
    target.set(source.subarray(offset, offset + run), at);
    for (let i = axis - 1; i >= 0; i--) {
      index[i] += 1;
      if (index[i] < extent[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

// Routes Relu6's gradient to Relu6Grad on wasm; every other backend keeps tfjs's own.
function registerRelu6Gradient(tf) {
  const original = tf.getGradient('Relu6');
  if (!original || original.gradFunc.dreamframe) return false;
  const gradFunc = (dy, saved, attrs) => {
    if (tf.getBackend() !== 'wasm') return original.gradFunc(dy, saved, attrs);
    const [x] = saved;
    return { x: () => tf.engine().runKernel('Relu6Grad', { dy, x }) };
  };
  gradFunc.dreamframe = true;
  tf.registerGradient({ ...original, gradFunc });
  return true;
}

// A copy of a small tensor's values straight from the wasm heap (the filters of the input
// gradients: a few thousand floats). Copied, because making tensors afterwards may grow the
// heap, which detaches a view of it; read in place, not through dataSync.
function heapCopy(tf, info) {
  return tf.engine().backend.typedArrayFromHeap(info).slice();
}

// Ops pass their input Tensors straight to runKernel, so kernel inputs are Tensors and tfjs
// ops accept them as they are. (Aliasing one with makeTensorFromTensorInfo is a trap: the
// alias takes no reference, so disposing it frees the caller's data.) A bare TensorInfo, which
// only other kernels pass, is copied.
function readTensor(tf, info) {
  if (info instanceof tf.Tensor) return info;
  return tf.tensor(tf.engine().backend.readSync(info.dataId), info.shape, info.dtype);
}

export const WASM_KERNELS = {
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  Conv2DBackpropFilter: conv2dBackpropFilter,
  Conv2DBackpropInput: conv2dBackpropInput,
  Relu6Grad: (tf, args) => relu6Grad(args),
  PhaseInterleave: (tf, args) => phaseInterleave(args),
  Identity: (tf, args) => sharedIdentity(args),
  Slice: (tf, args, original) => slice(tf, original, args),
};
const REPLACED = new Set(['Conv2DBackpropInput', 'Identity', 'Slice']); // wasm's are slow

// Registers the kernels for the wasm backend: the missing ones, and faster replacements, and
// sends Relu6's gradient to Relu6Grad there. Safe to call twice.
export function registerWasmKernels(tf) {
  const added = [];
  if (registerRelu6Gradient(tf)) added.push('Relu6 gradient');
  for (const [kernelName, impl] of Object.entries(WASM_KERNELS)) {
    const existing = tf.getKernel(kernelName, 'wasm');
    if (existing && existing.kernelFunc.dreamframe) continue;
    if (existing && !REPLACED.has(kernelName)) continue;
    if (existing) tf.unregisterKernel(kernelName, 'wasm');
    const original = existing?.kernelFunc;
    const kernelFunc = (args) => impl(tf, args, original);
    kernelFunc.dreamframe = true;
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc,
    });
    added.push(kernelName);
  }
  return added;
}
