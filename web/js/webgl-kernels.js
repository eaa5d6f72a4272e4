// What the page changes in tfjs 4.22's WebGL backend so that one compiled shader program can
// serve every photo size (WEBGL_USE_SHAPES_UNIFORMS), and gives the right answer doing so.
//
// With shape uniforms, tfjs passes shapes to a program as uniforms and caches the compiled
// program under a key that leaves the sizes out (gpgpu_math's makeShaderKey). The key keeps
// only the facts about each input and the output that the generated GLSL branches on: for
// instance, whether a tensor's logical shape equals its texture's shape (then it is sampled
// directly, otherwise through a flat index). Two of those facts are wrong in 4.22 (and in
// tfjs master as of 2025):
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
export function describe(shape, texData) {
  if (!texData || texData.texture == null) return `U${shape}`; // uploaded as a uniform array: sizes are in the GLSL, and in tfjs's key
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
      return describe(input.shape, this.texData.get(seen.dataId));
    });
    facts.push(describe(frame.output.shape, this.texData.get(frame.output.dataId)));
    return getAndSaveBinary.call(this, `${key}|${facts.join('|')}`, make);
  };
}
