// What the page changes in tfjs 4.22's WebGL backend so that one compiled shader program can
// serve every photo size (WEBGL_USE_SHAPES_UNIFORMS), and gives the right answer doing so.
//
// With shape uniforms, tfjs passes shapes to a program as uniforms and caches the compiled
// program under a key that leaves the sizes out (gpgpu_math's makeShaderKey). The key keeps
// only the facts about each input and the output that the generated GLSL branches on: for
// instance, whether a tensor's logical shape equals its texture's shape (then it is sampled
// directly, otherwise through a flat index). Two of those facts are wrong in 4.22 (and in
// tfjs's master branch of June 2025):
//   - "logical shape equals texture shape" is computed from the tensor's own shape, but the
//     sampler asks it of the squeezed shape: a packed [1, r, c] input (every 1x1 convolution
//     runs as a batch matmul of [1, h*w, c]) or an unpacked [1, 1, r, c] one. A [1, 864, 32]
//     input kept in an [864, 32] texture and a [1, 33900, 32] one kept in [150, 7232]
//     (tfjs lays a tensor out differently once h*w exceeds twice MAX_TEXTURE_SIZE) then
//     share a program that reads the second as if it were the first.
//   - the output's facts are computed as if it were packed when the inputs are: an unpacking
//     program with a [1, n] output (getOutput2DCoords's shape[0] == 1 branch) shares the
//     program of a [24, 8475] one.
// Found by bisecting the model's input gradient kernel by kernel against the cpu backend
// (a 1x1 FusedConv2D at 150x226 after one at 34x42: relative error 3.3; the gradient of a
// 451x300 photo after a 67x83 one: relative error 1.0), then by compiling, for every reuse
// of a cached program with new input shapes, the source those inputs would have had, and
// comparing it with the cached one (tests/test_gpu_backends.py does the same).
//
// The correction: the key of every program is extended with a complete description of each
// input and the output: packing, rank, which dimensions are 1, and whether the shape, its
// squeezed forms or its strides coincide with the texture's shape. Each is a yes/no fact that
// rarely changes with the size, so programs are still shared across sizes; a fact the GLSL
// might branch on is never left out. Per backend instance (WebGL only): the cache, the
// kernels and every other backend are untouched.

const PATCHED = Symbol('dreamframe:shader-keys');

const equal = (a, b) => a.length === b.length && a.every((d, i) => d === b[i]);
const squeeze = (shape) => shape.filter((d) => d !== 1);

function strides(shape) {
  const out = [];
  for (let i = shape.length - 2, s = shape[shape.length - 1]; i >= 0; i--) {
    out.unshift(s);
    s *= shape[i];
  }
  return out;
}

// The yes/no facts about one tensor as a program sees it that the GLSL generator may branch
// on (its sizes themselves are uniforms).
export function layoutFacts(shape, texData) {
  // Never laid out in a texture: uploaded as a uniform array, whose sizes are in the GLSL
  // (and in tfjs's key). A texture's layout, not the texture itself, is what counts: in
  // tfjs's compile-only mode (pyscript_app/prepare.py) a tensor from the CPU gets its
  // layout but no texture, and the program compiled then must be the one a real run finds.
  if (!texData || texData.texShape == null) return `U${shape}`;
  const tex = texData.texShape;
  const packedTex = tex.map((d) => Math.ceil(d / 2));
  const forms = [shape, squeeze(shape)];
  if (shape.length === 3 && shape[0] === 1) forms.push(shape.slice(1));
  if (shape.length === 4 && shape[0] === 1) forms.push(shape.slice(1));
  const facts = [
    texData.isPacked ? 'p' : 'u', shape.length, shape.map((d) => (d === 1 ? 1 : 0)).join(''),
    tex.map((d) => (d === 1 ? 1 : 0)).join(''), packedTex.map((d) => (d === 1 ? 1 : 0)).join(''),
    ...forms.map((f) => (equal(f, tex) ? 1 : 0)),
    ...forms.map((f) => [...strides(f), f[f.length - 1]].map((s) => (s === tex[1] ? 1 : 0)).join('')),
    texData.slice?.flatOffset > 0 ? 'o' : '',
  ];
  return facts.join('.');
}

// Makes `backend` (a MathBackendWebGL) key its compiled programs as described above.
export function fixShaderKeys(backend) {
  if (!backend || backend[PATCHED] || typeof backend.runWebGLProgram !== 'function') return;
  backend[PATCHED] = true;
  // One frame per runWebGLProgram call in progress: its program and inputs, its output
  // (the first tensor it makes), and the programs it runs to pack, unpack or reshape an
  // input first (their input is that input; their output is what the program samples).
  const frames = [];
  const { runWebGLProgram, makeTensorInfo, getAndSaveBinary } = backend;
  backend.runWebGLProgram = function (program, inputs, ...rest) {
    const parent = frames[frames.length - 1];
    const frame = { program, inputs, output: null, converted: new Map(), keyed: false };
    frames.push(frame);
    try {
      const result = runWebGLProgram.call(this, program, inputs, ...rest);
      if (parent && !parent.keyed && inputs.length === 1) parent.converted.set(inputs[0].dataId, result);
      return result;
    } finally {
      frames.pop();
    }
  };
  backend.makeTensorInfo = function (...args) {
    const info = makeTensorInfo.apply(this, args);
    const frame = frames[frames.length - 1];
    if (frame && frame.output === null) frame.output = info;
    return info;
  };
  backend.getAndSaveBinary = function (key, make) {
    const frame = frames[frames.length - 1];
    if (!frame || !frame.program.enableShapeUniforms || !frame.output) {
      return getAndSaveBinary.call(this, key, make);
    }
    frame.keyed = true;
    const facts = frame.inputs.map((input) => {
      const seen = frame.converted.get(input.dataId) ?? input;
      return layoutFacts(input.shape, this.texData.get(seen.dataId));
    });
    facts.push(layoutFacts(frame.output.shape, this.texData.get(frame.output.dataId)));
    return getAndSaveBinary.call(this, `${key}|${facts.join('|')}`, make);
  };
}

// ---------------------------------------------------------------------------------------
// Kernels whose tfjs 4.22 WebGL programs write sizes into their GLSL (or do not take shape
// uniforms at all), so that each new photo size, octave, tile or roll offset compiled
// them again: 330 programs for a second photo size (160x224 after 192x128) with the above. These run the same arithmetic
// with every size passed as a uniform, so that one program serves every size (per layer
// shape where the GLSL loops over a filter or channel count, which is the model's, not the
// photo's). Each is tfjs's own program with its size literals replaced by uniforms, or,
// for the reductions, the same sums in fixed windows. Registered for 'webgl' only, and used
// only with shape uniforms on and where tfjs would run the packed program replaced; every
// other case runs tfjs's own kernel. Tested against the cpu backend
// (tests/test_webgl_kernels.py).
//   Slice, Concat, PadV2                the roll of each step, tiles, the model's explicit
//                                       padding of strided convolutions and its gradient
//   ClipByValue, ResizeBilinear         each step's clip, each octave's resize
//   Conv2DBackpropInput,                the input gradient of every convolution (sizes of
//   DepthwiseConv2dNativeBackpropInput  dy and paddings, which depend on the size's parity);
//                                       pointwise and stride-1 depthwise ones through
//                                       tfjs's matmul and forward depthwise programs instead:
//                                       its transposed programs with sizes as uniforms ran
//                                       2-4x slower than with constants on SwiftShader;
//                                       these run faster than tfjs's own with constants
//   FromPixels                          each photo (and zoom frame) read into a tensor
//   Sum, Mean, Max                      biases' gradients, the objective's means, moments:
//                                       windows of 64, in as many passes as the size needs
//                                       (tfjs chose the window from the size)

const WINDOW = 64;

const COORDS = ['x', 'y', 'z', 'w'];
const coordType = (rank) => (rank === 1 ? 'int' : `ivec${rank}`);
const channels = (name, rank) => (rank === 1 ? [name] : COORDS.slice(0, rank).map((c) => `${name}.${c}`));
const uniformsOn = (tf, rank) => tf.env().getBool('WEBGL_USE_SHAPES_UNIFORMS') && rank >= 2 && rank <= 4;

class SlicePacked {
  constructor(size) {
    const rank = size.length;
    this.variableNames = ['source'];
    this.packedInputs = true;
    this.packedOutput = true;
    this.enableShapeUniforms = true;
    this.outputShape = size;
    this.customUniforms = [{ name: 'start', arrayIndex: rank, type: 'int' }];
    const coords = channels('coords', rank);
    const source = channels('sourceLoc', rank);
    const value = `getChannel(getSource(${source.join()}), vec2(${source.slice(-2).join()}))`;
    const [row, col] = [rank - 2, rank - 1];
    this.userCode = `
      void main() {
        ${coordType(rank)} coords = getOutputCoords();
        ${coordType(rank)} sourceLoc = coords + ${coordType(rank)}(${size.map((_, i) => `start[${i}]`).join()});
        vec4 result = vec4(0.);
        result.x = ${value};
        if (++${coords[col]} < outShape[${col}]) {
          ++${source[col]};
          result.y = ${value};
          --${source[col]};
        }
        --${coords[col]};
        if (++${coords[row]} < outShape[${row}]) {
          ++${source[row]};
          result.z = ${value};
          if (++${coords[col]} < outShape[${col}]) {
            ++${source[col]};
            result.w = ${value};
          }
        }
        setOutput(result);
      }`;
  }
}

class ConcatPacked {
  constructor(shapes, axis) {
    const rank = shapes[0].length;
    const out = shapes[0].slice();
    out[axis] = shapes.reduce((sum, s) => sum + s[axis], 0);
    this.variableNames = shapes.map((_, i) => `T${i}`);
    this.packedInputs = true;
    this.packedOutput = true;
    this.enableShapeUniforms = true;
    this.outputShape = out;
    // offsets[i]: where input i + 1 starts along `axis`.
    this.customUniforms = [{ name: 'offsets', arrayIndex: shapes.length - 1, type: 'int' }];
    const names = COORDS.slice(0, rank);
    const at = names[axis];
    const shifted = (list, shift) => list.map((c) => (c === at ? `${c} - ${shift}` : c)).join();
    const last = names.slice(-2);
    let body = `if (${at} < offsets[0]) {
        return getChannel(getT0(${names.join()}), vec2(${last.join()}));
      }`;
    for (let i = 1; i < shapes.length - 1; i++) {
      body += `
      if (${at} < offsets[${i}] && ${at} >= offsets[${i - 1}]) {
        return getChannel(getT${i}(${shifted(names, `offsets[${i - 1}]`)}), vec2(${shifted(last, `offsets[${i - 1}]`)}));
      }`;
    }
    const n = shapes.length - 1;
    body += `
      return getChannel(getT${n}(${shifted(names, `offsets[${n - 1}]`)}), vec2(${shifted(last, `offsets[${n - 1}]`)}));`;
    const coords = channels('coords', rank);
    const [row, col] = [rank - 2, rank - 1];
    this.userCode = `
      float getValue(${names.map((c) => `int ${c}`)}) {
        ${body}
      }
      void main() {
        ${coordType(rank)} coords = getOutputCoords();
        vec4 result = vec4(getValue(${coords}), 0., 0., 0.);
        ${coords[col]} = ${coords[col]} + 1;
        if (${coords[col]} < outShape[${col}]) {
          result.g = getValue(${coords});
        }
        ${coords[row]} = ${coords[row]} + 1;
        if (${coords[row]} < outShape[${row}]) {
          result.a = getValue(${coords});
        }
        ${coords[col]} = ${coords[col]} - 1;
        if (${coords[row]} < outShape[${row}] && ${coords[col]} < outShape[${col}]) {
          result.b = getValue(${coords});
        }
        setOutput(result);
      }`;
  }
}

class PadPacked {
  constructor(xShape, paddings) {
    const rank = xShape.length;
    const type = coordType(rank);
    this.variableNames = ['x'];
    this.packedInputs = true;
    this.packedOutput = true;
    this.enableShapeUniforms = true;
    this.outputShape = paddings.map((p, i) => p[0] + xShape[i] + p[1]);
    this.customUniforms = [{ name: 'value', type: 'float' }, { name: 'start', type: type },
      { name: 'end', type: type }];
    const rc = channels('rc', rank);
    const source = channels('source', rank);
    const [row, col] = [rank - 2, rank - 1];
    const component = (i) => `
          if (any(lessThan(rc, start)) || any(greaterThanEqual(rc, end))) {
            result[${i}] = float(value);
          } else {
            ${type} source = rc - start;
            result[${i}] = getChannel(getX(${source.join()}), vec2(${source.slice(-2).join()}));
          }`;
    this.userCode = `
      void main() {
        ${type} outputLoc = getOutputCoords();
        vec4 result = vec4(0.);
        ${type} rc = outputLoc;
        ${component(0)}
        ${rc[col]} += 1;
        if (${rc[col]} < outShape[${col}]) {
          ${component(1)}
        }
        rc = outputLoc;
        ${rc[row]} += 1;
        if (${rc[row]} < outShape[${row}]) {
          ${component(2)}
          ${rc[col]} += 1;
          if (${rc[col]} < outShape[${col}]) {
            ${component(3)}
          }
        }
        setOutput(result);
      }`;
  }
}

class ClipPacked {
  constructor(shape) {
    this.variableNames = ['A'];
    this.packedInputs = true;
    this.packedOutput = true;
    this.enableShapeUniforms = true;
    this.outputShape = shape;
    this.customUniforms = [{ name: 'minVal', type: 'float' }, { name: 'maxVal', type: 'float' }];
    this.userCode = `
      void main() {
        vec4 value = getAAtOutCoords();
        if (any(isnan(value))) {
          setOutput(value);
          return;
        }
        setOutput(clamp(value, vec4(minVal), vec4(maxVal)));
      }`;
  }
}

class ResizeBilinearPacked {
  constructor(inputShape, newHeight, newWidth, halfPixelCenters) {
    const [batch, , , depth] = inputShape;
    this.variableNames = ['A'];
    this.packedInputs = true;
    this.packedOutput = true;
    this.enableShapeUniforms = true;
    this.outputShape = [batch, newHeight, newWidth, depth];
    this.customUniforms = [{ name: 'effectiveInputOverOutputRatioRC', type: 'vec3' },
      { name: 'inputShapeRC', type: 'vec3' }];
    const fractional = halfPixelCenters
      ? '(vec3(yRC) + vec3(0.5)) * effectiveInputOverOutputRatioRC - vec3(0.5)'
      : 'vec3(yRC) * effectiveInputOverOutputRatioRC';
    const corners = (name, r, c1, c2) => `
        vec4 ${name} = vec4(
          getAValue(b, ${r}, ${c1}, d),
          hasNextCol ? getAValue(b, ${r}, ${c1}, d + 1) : 0.0,
          hasNextRow ? getAValue(b, ${r}, ${c2}, d) : 0.0,
          (hasNextRow && hasNextCol) ? getAValue(b, ${r}, ${c2}, d + 1) : 0.0);`;
    this.userCode = `
      float getAValue(int b, int r, int c, int d) {
        return getChannel(getA(b, r, c, d), vec2(c, d));
      }
      void main() {
        ivec4 coords = getOutputCoords();
        int b = coords[0];
        int d = coords[3];
        ivec3 yRC = coords.yzz + ivec3(0, 0, 1);
        vec3 sourceFracIndexRC = ${fractional};
        ivec3 sourceFloorRC = ivec3(max(sourceFracIndexRC, vec3(0.0)));
        ivec3 sourceCeilRC = ivec3(min(inputShapeRC - 1.0, ceil(sourceFracIndexRC)));
        bool hasNextCol = d < outShape[3] - 1;
        bool hasNextRow = coords.z < outShape[2] - 1;
        ${corners('topLeft', 'sourceFloorRC.x', 'sourceFloorRC.y', 'sourceFloorRC.z')}
        ${corners('bottomLeft', 'sourceCeilRC.x', 'sourceFloorRC.y', 'sourceFloorRC.z')}
        ${corners('topRight', 'sourceFloorRC.x', 'sourceCeilRC.y', 'sourceCeilRC.z')}
        ${corners('bottomRight', 'sourceCeilRC.x', 'sourceCeilRC.y', 'sourceCeilRC.z')}
        vec3 fracRC = sourceFracIndexRC - vec3(sourceFloorRC);
        vec4 top = mix(topLeft, topRight, fracRC.yyzz);
        vec4 bottom = mix(bottomLeft, bottomRight, fracRC.yyzz);
        setOutput(mix(top, bottom, fracRC.x));
      }`;
  }
}

// A photo's pixels (bytes in an RGBA texture) to a packed [height, width, channels] tensor:
// tfjs's program, with the texture's size as a uniform.
class FromPixelsPacked {
  constructor(outputShape, webgl2) {
    this.variableNames = ['A'];
    this.packedOutput = true;
    this.enableShapeUniforms = true;
    this.outputShape = outputShape;
    this.customUniforms = [{ name: 'pixelsSize', type: 'vec2' }];
    this.userCode = `
      void main() {
        ivec3 coords = getOutputCoords();
        int texR = coords[0];
        int texC = coords[1];
        int depth = coords[2];
        vec4 result = vec4(0.);
        for (int row = 0; row <= 1; row++) {
          for (int col = 0; col <= 1; col++) {
            texC = coords[1] + row;
            depth = coords[2] + col;
            vec2 uv = (vec2(texC, texR) + halfCR) / pixelsSize;
            vec4 values = ${webgl2 ? 'texture' : 'texture2D'}(A, uv);
            float value;
            if (depth == 0) {
              value = values.r;
            } else if (depth == 1) {
              value = values.g;
            } else if (depth == 2) {
              value = values.b;
            } else if (depth == 3) {
              value = values.a;
            }
            result[row * 2 + col] = floor(value * 255.0 + 0.5);
          }
        }
        setOutput(result);
      }`;
  }
}

// The input gradient of a convolution: tfjs's packed program, with dy's height and width
// and the paddings as uniforms.
class Conv2DDerInputPacked {
  constructor(convInfo) {
    this.variableNames = ['dy', 'W'];
    this.packedInputs = true;
    this.packedOutput = true;
    this.enableShapeUniforms = true;
    this.outputShape = convInfo.inShape;
    this.customUniforms = [{ name: 'strides', type: 'vec2' }, { name: 'pads', type: 'ivec2' },
      { name: 'dySize', type: 'vec2' }];
    const { filterHeight: fh, filterWidth: fw, outChannels } = convInfo;
    const accumulate = (target, column) => `
              for (int d2 = 0; d2 < ${outChannels}; d2 += 2) {
                vec4 wValue = getW(wRPerm, wCPerm, d1, d2);
                vec4 dySample = getDy(batch, idyR, ${column}, d2);
                vec2 dyValue = mod(float(${column}), 2.) == 0. ? dySample.xy : dySample.zw;
                ${target} += vec2(dot(dyValue, wValue.xy), dot(dyValue, wValue.zw));
              }`;
    this.userCode = `
      void main() {
        ivec4 coords = getOutputCoords();
        int batch = coords[0];
        int d1 = coords[3];
        ivec2 dyCorner = ivec2(coords[1], coords[2]) - pads;
        int dyRCorner = dyCorner.x;
        int dyCCorner = dyCorner.y;
        vec4 result = vec4(0.);
        for (int wR = 0; wR < ${fh}; wR++) {
          float dyR = float(dyRCorner + wR) / strides[0];
          if (dyR < 0.0 || dyR >= dySize.x || fract(dyR) > 0.0) {
            continue;
          }
          int idyR = int(dyR);
          int wRPerm = ${fh} - 1 - wR;
          for (int wC = 0; wC < ${fw}; wC++) {
            int wCPerm = ${fw} - 1 - wC;
            float dyC = float(dyCCorner + wC) / strides[1];
            bool idyCVal = (dyC >= 0.0) && (dyC < dySize.y) && (fract(dyC) == 0.0);
            int idyC = int(dyC);
            float dyC2 = float(dyCCorner + wC + 1) / strides[1];
            bool idyCVal2 = (dyC2 >= 0.0) && (dyC2 < dySize.y) && (fract(dyC2) == 0.0);
            int idyC2 = int(dyC2);
            if (idyCVal && idyCVal2) {
              for (int d2 = 0; d2 < ${outChannels}; d2 += 2) {
                vec4 wValue = getW(wRPerm, wCPerm, d1, d2);
                vec4 dySample = getDy(batch, idyR, idyC, d2);
                vec4 dySample2 = (idyC / 2 == idyC2 / 2) ? dySample : getDy(batch, idyR, idyC2, d2);
                vec2 dyValue = mod(float(idyC), 2.) == 0. ? dySample.xy : dySample.zw;
                result.xy += vec2(dot(dyValue, wValue.xy), dot(dyValue, wValue.zw));
                dyValue = mod(float(idyC2), 2.) == 0. ? dySample2.xy : dySample2.zw;
                result.zw += vec2(dot(dyValue, wValue.xy), dot(dyValue, wValue.zw));
              }
            } else if (idyCVal) {${accumulate('result.xy', 'idyC')}
            } else if (idyCVal2) {${accumulate('result.zw', 'idyC2')}
            }
          }
        }
        setOutput(result);
      }`;
  }
}

// The input gradient of a depthwise convolution (unpacked, as tfjs's).
class DepthwiseDerInput {
  constructor(convInfo) {
    this.variableNames = ['dy', 'W'];
    this.enableShapeUniforms = true;
    this.outputShape = convInfo.inShape;
    this.customUniforms = [{ name: 'pads', type: 'ivec2' }, { name: 'dySize', type: 'vec2' }];
    const { filterHeight: fh, filterWidth: fw, strideHeight, strideWidth } = convInfo;
    const channelMul = convInfo.outChannels / convInfo.inChannels;
    this.userCode = `
      void main() {
        ivec4 coords = getOutputCoords();
        int batch = coords[0];
        int d1 = coords[3];
        ivec2 dyCorner = coords.yz - pads;
        int dyRCorner = dyCorner.x;
        int dyCCorner = dyCorner.y;
        float dotProd = 0.0;
        for (int wR = 0; wR < ${fh}; wR++) {
          float dyR = float(dyRCorner + wR) / ${strideHeight}.0;
          if (dyR < 0.0 || dyR >= dySize.x || fract(dyR) > 0.0) {
            continue;
          }
          int idyR = int(dyR);
          int wRPerm = ${fh} - 1 - wR;
          for (int wC = 0; wC < ${fw}; wC++) {
            float dyC = float(dyCCorner + wC) / ${strideWidth}.0;
            if (dyC < 0.0 || dyC >= dySize.y || fract(dyC) > 0.0) {
              continue;
            }
            int idyC = int(dyC);
            int wCPerm = ${fw} - 1 - wC;
            for (int dm = 0; dm < ${channelMul}; dm++) {
              int d2 = d1 * ${channelMul} + dm;
              float xValue = getDy(batch, idyR, idyC, d2);
              float wValue = getW(wRPerm, wCPerm, d1, dm);
              dotProd += xValue * wValue;
            }
          }
        }
        setOutput(dotProd);
      }`;
  }
}

// One pass of a reduction in windows of WINDOW values: x [rows, cols] to [rows,
// ceil(cols / WINDOW)] along its rows ('inner'), or to [ceil(rows / WINDOW), cols] down its
// columns ('outer': a sum over the batch and pixels of an NHWC tensor, without
// transposing it first). `scale` multiplies the result (1 / n in a mean's last pass).
class ReducePass {
  constructor(shape, direction, type) {
    const [rows, cols] = shape;
    this.variableNames = ['x'];
    this.enableShapeUniforms = true;
    this.outputShape = direction === 'inner'
      ? [rows, Math.ceil(cols / WINDOW)] : [Math.ceil(rows / WINDOW), cols];
    this.customUniforms = [{ name: 'size', type: 'int' }, { name: 'scale', type: 'float' }];
    const max = type === 'max';
    const start = max ? '-1.0 / 1e-20' : '0.0'; // as tfjs's (1/0 fails on some drivers)
    const read = direction === 'inner' ? 'getX(coords[0], i)' : 'getX(i, coords[1])';
    const first = direction === 'inner' ? 'coords[1]' : 'coords[0]';
    // Four values at a time into a vec4, added as tfjs's ReduceProgram does (dot with ones).
    const update = max
      ? `acc = max(acc, values);
            if (any(isnan(values))) nan = true;`
      : 'sum += dot(values, vec4(1.0));';
    this.userCode = `
      float value(ivec2 coords, int i) {
        return i < size ? ${read} : ${start};
      }
      void main() {
        ivec2 coords = getOutputCoords();
        int begin = ${first} * ${WINDOW};
        vec4 acc = vec4(${start});
        float sum = 0.0;
        bool nan = false;
        for (int j = 0; j < ${WINDOW}; j += 4) {
          int i = begin + j;
          vec4 values = vec4(value(coords, i), value(coords, i + 1), value(coords, i + 2),
                             value(coords, i + 3));
          ${update}
        }
        ${max ? 'float result = nan ? NAN : max(max(acc.x, acc.y), max(acc.z, acc.w));'
    : 'float result = sum;'}
        setOutput(result * scale);
      }`;
  }
}

function reduceKernel(tf, type, original) {
  return (args) => {
    const { inputs: { x }, backend, attrs } = args;
    const rank = x.shape.length;
    // Max names its axes `reductionIndices`; Sum and Mean `axis`.
    const axes = tf.util.parseAxisParam(type === 'max' ? attrs.reductionIndices : attrs.axis, x.shape);
    const sorted = [...axes].sort((a, b) => a - b);
    const inner = sorted.every((a, i) => a === rank - sorted.length + i);
    const outer = sorted.every((a, i) => a === i);
    if (!tf.env().getBool('WEBGL_USE_SHAPES_UNIFORMS') || x.dtype !== 'float32' || !axes.length
        || !(inner || outer) || tf.util.sizeFromShape(x.shape) === 0 || backend.shouldExecuteOnCPU([x])) {
      return original(args);
    }
    const reduced = tf.util.sizeFromShape(axes.map((a) => x.shape[a]));
    const kept = tf.util.sizeFromShape(x.shape) / reduced;
    const direction = inner ? 'inner' : 'outer';
    const reshape = tf.getKernel('Reshape', 'webgl').kernelFunc;
    let current = reshape({ inputs: { x }, backend,
      attrs: { shape: inner ? [kept, reduced] : [reduced, kept] } });
    let size = reduced;
    do {
      const last = size <= WINDOW;
      const program = new ReducePass(current.shape, direction, type);
      const scale = last && type === 'mean' ? 1 / reduced : 1;
      const next = backend.runWebGLProgram(program, [current], 'float32', [[size], [scale]]);
      backend.disposeIntermediateTensorInfo(current);
      current = next;
      size = Math.ceil(size / WINDOW);
    } while (size > 1);
    let outShape = x.shape.filter((_, i) => !axes.includes(i));
    if (attrs.keepDims) outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const out = reshape({ inputs: { x: current }, backend, attrs: { shape: outShape } });
    backend.disposeIntermediateTensorInfo(current);
    return out;
  };
}

// Each replacement: (tf, tfjs's own kernelFunc) -> kernelFunc. It runs tfjs's own where
// it does not apply.
const REPLACEMENTS = {
  Slice: (tf, original) => (args) => {
    const { inputs: { x }, backend, attrs } = args;
    const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin, attrs.size);
    const packed = backend.texData.get(x.dataId)?.isPacked;
    const contiguous = tf.slice_util.isSliceContinous(x.shape, begin, size);
    if (!uniformsOn(tf, size.length) || !tf.env().getBool('WEBGL_PACK_ARRAY_OPERATIONS')
        || x.dtype === 'string' || tf.util.sizeFromShape(size) === 0
        || backend.shouldExecuteOnCPU([x]) || (!packed && contiguous)) {
      return original(args);
    }
    tf.slice_util.assertParamsValid(x, begin, size);
    return backend.runWebGLProgram(new SlicePacked(size), [x], x.dtype, [begin]);
  },
  Concat: (tf, original) => (args) => {
    const { inputs, backend, attrs } = args;
    const axis = tf.util.parseAxisParam(attrs.axis, inputs[0].shape)[0];
    const parts = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    const rank = inputs[0].shape.length;
    if (!uniformsOn(tf, rank) || !tf.env().getBool('WEBGL_PACK_ARRAY_OPERATIONS')
        || parts.length < 2 || parts.length > tf.env().getNumber('WEBGL_MAX_TEXTURES_IN_SHADER')
        || inputs[0].dtype === 'string' || inputs[0].dtype === 'complex64'
        || backend.shouldExecuteOnCPU(inputs)) {
      return original(args);
    }
    tf.backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
    const offsets = [];
    parts.slice(0, -1).reduce((sum, t) => { offsets.push(sum + t.shape[axis]); return sum + t.shape[axis]; }, 0);
    const program = new ConcatPacked(parts.map((t) => t.shape), axis);
    return backend.runWebGLProgram(program, parts, parts[0].dtype, [offsets]);
  },
  PadV2: (tf, original) => (args) => {
    const { inputs: { x }, backend, attrs: { paddings, constantValue } } = args;
    const rank = x.shape.length;
    if (!uniformsOn(tf, rank) || !tf.env().getBool('WEBGL_PACK_ARRAY_OPERATIONS')
        || tf.util.sizeFromShape(x.shape) === 0) {
      return original(args);
    }
    const start = paddings.map((p) => p[0]);
    const end = paddings.map((p, i) => p[0] + x.shape[i]);
    return backend.runWebGLProgram(new PadPacked(x.shape, paddings), [x], x.dtype,
      [[constantValue], start, end]);
  },
  ClipByValue: (tf, original) => (args) => {
    const { inputs: { x }, backend, attrs: { clipValueMin, clipValueMax } } = args;
    if (!uniformsOn(tf, x.shape.length) || !tf.env().getBool('WEBGL_PACK_CLIP')) return original(args);
    return backend.runWebGLProgram(new ClipPacked(x.shape), [x], x.dtype,
      [[clipValueMin], [clipValueMax]]);
  },
  ResizeBilinear: (tf, original) => (args) => {
    const { inputs: { images }, backend, attrs: { alignCorners, halfPixelCenters, size } } = args;
    if (!uniformsOn(tf, 4) || !tf.env().getBool('WEBGL_PACK_IMAGE_OPERATIONS')) return original(args);
    const [, oldHeight, oldWidth] = images.shape;
    const [newHeight, newWidth] = size;
    const inH = alignCorners && newHeight > 1 ? oldHeight - 1 : oldHeight;
    const inW = alignCorners && newWidth > 1 ? oldWidth - 1 : oldWidth;
    const outH = alignCorners && newHeight > 1 ? newHeight - 1 : newHeight;
    const outW = alignCorners && newWidth > 1 ? newWidth - 1 : newWidth;
    const program = new ResizeBilinearPacked(images.shape, newHeight, newWidth, halfPixelCenters);
    return backend.runWebGLProgram(program, [images], 'float32',
      [[inH / outH, inW / outW, inW / outW], [oldHeight, oldWidth, oldWidth]]);
  },
  Conv2DBackpropInput: (tf, original) => (args) => {
    const { inputs: { dy, filter }, backend, attrs } = args;
    const { inputShape, strides, pad, dataFormat, dimRoundingMode } = attrs;
    const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
    if (!uniformsOn(tf, 4) || !tf.env().getBool('WEBGL_PACK_CONV2DTRANSPOSE') || format !== 'channelsLast') {
      return original(args);
    }
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, strides, 1, pad,
      dimRoundingMode, false, format);
    if (info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1
        && info.strideWidth === 1 && info.padInfo.top === 0 && info.padInfo.left === 0) {
      // A pointwise convolution's input gradient is dy [pixels, out] times the filter
      // [in, out] transposed: tfjs's matmul, 2-5x faster here than its transposed
      // convolution with or without shape uniforms. One matrix per row of pixels
      // ([batch * height, width, out]: no copy to reshape a packed dy, and no program of
      // its own for an odd number of pixels, as [1, pixels, out] would need).
      const kernel = (name) => tf.getKernel(name, 'webgl').kernelFunc;
      const [batch, height, width, channels] = inputShape;
      const rows = kernel('Reshape')({ inputs: { x: dy }, backend,
        attrs: { shape: [batch * height, width, info.outChannels] } });
      const weights = kernel('Reshape')({ inputs: { x: filter }, backend,
        attrs: { shape: [1, channels, info.outChannels] } });
      const product = kernel('BatchMatMul')({ inputs: { a: rows, b: weights }, backend,
        attrs: { transposeA: false, transposeB: true } });
      const dx = kernel('Reshape')({ inputs: { x: product }, backend, attrs: { shape: inputShape } });
      for (const t of [rows, weights, product]) backend.disposeIntermediateTensorInfo(t);
      return dx;
    }
    const pads = [info.filterHeight - 1 - info.padInfo.top, info.filterWidth - 1 - info.padInfo.left];
    return backend.runWebGLProgram(new Conv2DDerInputPacked(info), [dy, filter], 'float32',
      [[info.strideHeight, info.strideWidth], pads, [info.outHeight, info.outWidth]]);
  },
  DepthwiseConv2dNativeBackpropInput: (tf, original) => (args) => {
    const { inputs: { dy, filter }, backend, attrs } = args;
    if (!uniformsOn(tf, 4)) return original(args);
    const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs;
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, strides, dilations,
      pad, dimRoundingMode, true);
    const { top, bottom, left, right } = info.padInfo;
    const [fh, fw] = [info.filterHeight, info.filterWidth];
    if (info.strideHeight === 1 && info.strideWidth === 1 && info.dilationHeight === 1
        && info.dilationWidth === 1 && info.outChannels === info.inChannels) {
      // At stride 1 the input gradient is the depthwise convolution of dy with the filter
      // turned by 180 degrees, padded by what the forward one left out: tfjs's forward
      // program (which takes sizes as uniforms), 1.5-4x faster here than its transposed one.
      const kernel = (name) => tf.getKernel(name, 'webgl').kernelFunc;
      const turned = kernel('Reverse')({ inputs: { x: filter }, backend, attrs: { dims: [0, 1] } });
      const dx = kernel('DepthwiseConv2dNative')({ inputs: { x: dy, filter: turned }, backend,
        attrs: { strides: [1, 1], dilations: [1, 1], dataFormat: 'NHWC',
          pad: [[0, 0], [fh - 1 - top, fh - 1 - bottom], [fw - 1 - left, fw - 1 - right], [0, 0]] } });
      backend.disposeIntermediateTensorInfo(turned);
      return dx;
    }
    const pads = [fh - 1 - top, fw - 1 - left];
    return backend.runWebGLProgram(new DepthwiseDerInput(info), [dy, filter], 'float32',
      [pads, [info.outHeight, info.outWidth]]);
  },
  FromPixels: (tf, original) => {
    let canvas = null; // where an image or a video frame is drawn first, as tfjs does
    return (args) => {
      const { inputs: { pixels }, backend, attrs: { numChannels } } = args;
      if (!uniformsOn(tf, 3) || !tf.env().getBool('WEBGL_PACK')) return original(args);
      const video = typeof HTMLVideoElement !== 'undefined' && pixels instanceof HTMLVideoElement;
      const image = typeof HTMLImageElement !== 'undefined' && pixels instanceof HTMLImageElement;
      const [width, height] = video ? [pixels.videoWidth, pixels.videoHeight] : [pixels.width, pixels.height];
      let source = pixels;
      if (image || video) {
        const willReadFrequently = tf.env().getBool('CANVAS2D_WILL_READ_FREQUENTLY_FOR_GPU');
        if (canvas?.willReadFrequently !== willReadFrequently) {
          canvas = { willReadFrequently,
            context: document.createElement('canvas').getContext('2d', { willReadFrequently }) };
        }
        canvas.context.canvas.width = width;
        canvas.context.canvas.height = height;
        canvas.context.drawImage(pixels, 0, 0, width, height);
        source = canvas.context.canvas;
      }
      const bytes = backend.makeTensorInfo([height, width], 'int32');
      backend.texData.get(bytes.dataId).usage = 2; // tfjs's TextureUsage.PIXELS
      backend.gpgpu.uploadPixelDataToTexture(backend.getTexture(bytes.dataId), source);
      const program = new FromPixelsPacked([height, width, numChannels],
        tf.env().getNumber('WEBGL_VERSION') === 2);
      const result = backend.runWebGLProgram(program, [bytes], 'int32', [[width, height]]);
      backend.disposeData(bytes.dataId);
      return result;
    };
  },
  Sum: (tf, original) => reduceKernel(tf, 'sum', original),
  Mean: (tf, original) => reduceKernel(tf, 'mean', original),
  Max: (tf, original) => reduceKernel(tf, 'max', original),
};
export const WEBGL_KERNELS = Object.keys(REPLACEMENTS);

// Registers the kernels above for the 'webgl' backend, once (the registry is global).
export function registerWebglKernels(tf) {
  for (const [name, make] of Object.entries(REPLACEMENTS)) {
    const own = tf.getKernel(name, 'webgl');
    if (!own || own.kernelFunc.dreamframe) continue;
    const kernelFunc = make(tf, own.kernelFunc);
    kernelFunc.dreamframe = true;
    tf.unregisterKernel(name, 'webgl');
    tf.registerKernel({ ...own, kernelFunc });
  }
}
