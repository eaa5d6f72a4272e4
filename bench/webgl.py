"""WebGL in practice: what a default dream of a small photo costs in shaders and GPU memory.

A WebGL step is cheap once its shader programs exist; compiling them is what a visitor
waits for. tfjs compiles one program per (operation, shapes) unless shape uniforms are on,
and every octave of a dream is a new size. So over a dream of a small photo this records,
per step: programs compiled so far (`Object.keys(tf.backend().binaryCache).length`), time
spent compiling (tfjs's `getAndSaveBinary` wrapped to time its callback), and GPU bytes
allocated (`tf.memory().numBytesInGPUAllocated`); then the GPU bytes after each of several
dreams, which must stay flat (web/js/backends.js caps the pool of freed textures).

`WEBGL_USE_SHAPES_UNIFORMS` is on in the page (web/js/backends.js, with tfjs's program cache
key corrected by web/js/webgl-kernels.js); each measurement sets it explicitly, so the two
settings are compared side by side.

`step_before_after` times the steady GPU step with tfjs's own kernels and gradients against
the page's (web/js/gpu-kernels.js, issue 18), alternating in one page (WebGL or WebGPU).
"""

import statistics

import numpy as np

from bench import steps

# Shared by the scripts below: shape uniforms as asked, `programs()` (WebGL programs in tfjs's
# cache), `compileMs` (time spent compiling from here on), and the photo at `url` as `img`.
WATCH_COMPILES = """\
  const { tf, engine } = window.dreamframe;
  tf.env().set('WEBGL_USE_SHAPES_UNIFORMS', shapeUniforms);
  const backend = tf.backend();
  const programs = () => Object.keys(backend.binaryCache).length;
  let compileMs = 0;
  const original = backend.getAndSaveBinary.bind(backend);
  backend.getAndSaveBinary = (key, make) => original(key, () => {
    const start = performance.now();
    try { return make(); } finally { compileMs += performance.now() - start; }
  });
  const img = new Image(); img.src = url; await img.decode();"""

DREAM = """async ([url, optionsJson, dreams, shapeUniforms]) => {
  /* WATCH_COMPILES */
  const image = window.dreamframe.images.toTensor(tf, img);
  const gpuBytes = () => tf.memory().numBytesInGPUAllocated ?? null;
  const before = { programs: programs(), gpu_bytes: gpuBytes() };
  const runs = [];
  for (let d = 0; d < dreams; d++) {
    const steps = [];
    let last = performance.now();
    const compileBefore = compileMs, programsBefore = programs();
    const result = await engine.dream(image, optionsJson, (info) => {
      const now = performance.now();
      steps.push({ octave: info.octave, step: info.step, ms: now - last,
                   programs: programs(), compile_ms: compileMs, gpu_bytes: gpuBytes() });
      last = now;
    });
    result.dispose();
    runs.push({ steps: d === 0 ? steps : undefined, programs_added: programs() - programsBefore,
                compile_ms: compileMs - compileBefore, gpu_bytes_after: gpuBytes(),
                num_tensors_after: tf.memory().numTensors,
                seconds: steps.reduce((s, x) => s + x.ms, 0) / 1000 });
  }
  image.dispose();
  return { before, runs, device: window.dreamframe.backend.device,
           shape_uniforms: tf.env().getBool('WEBGL_USE_SHAPES_UNIFORMS'),
           texture_pool_cap: tf.env().getNumber('WEBGL_DELETE_TEXTURE_THRESHOLD') };
}""".replace("  /* WATCH_COMPILES */", WATCH_COMPILES)

OPTIONS = '{"octaves": 4, "steps": 3, "seed": 0}'


def summarise(raw: dict) -> dict:
    """Per octave: first step against the rest, programs and compile time; memory per dream."""
    first = raw["runs"][0]
    octaves = []
    for octave in sorted({s["octave"] for s in first["steps"]}):
        steps = [s for s in first["steps"] if s["octave"] == octave]
        octaves.append({"octave": octave, "first_step_ms": steps[0]["ms"],
                        "other_steps_ms": statistics.median(s["ms"] for s in steps[1:])
                        if len(steps) > 1 else None,
                        "programs_after": steps[-1]["programs"],
                        "compile_ms_after": steps[-1]["compile_ms"],
                        "gpu_bytes_after": steps[-1]["gpu_bytes"]})
    return {"device": raw["device"], "shape_uniforms": raw["shape_uniforms"],
            "texture_pool_cap_bytes": raw["texture_pool_cap"], "options": OPTIONS,
            "programs_before": raw["before"]["programs"], "octaves": octaves,
            "dreams": [{k: v for k, v in run.items() if k != "steps"} for run in raw["runs"]]}


def measure(page: object, image_url: str, dreams: int, shape_uniforms: bool = False) -> dict:
    """Dream `dreams` times on the page's WebGL backend (fresh page: no programs yet)."""
    page.set_default_timeout(1_800_000)
    return summarise(page.evaluate(DREAM, [image_url, OPTIONS, dreams, shape_uniforms]))


# The GPU paths a step can take: (the page's GPU kernels on, WebGPU's tuned transposed conv).
GPU_PATHS = {
    "tfjs": (False, False),  # before issue 18: tfjs 4.22's own kernels and gradients
    "dreamframe": (True, False),  # web/js/gpu-kernels.js, as the page runs
    # WebGPU only: Conv2DBackpropInput as a matrix product (WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE
    # false), not taken by the page (slower on the software adapter here)
    "dreamframe + tuned transposed conv": (True, True),
}
SWITCH_PATH = """([kernels, tuned]) => {
  const { tf, setGpuKernels } = window.dreamframe;
  setGpuKernels(kernels);
  if (tf.env().flagRegistry.WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE) {
    tf.env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', !tuned);
  }
  return tf.getBackend();
}"""


def step_before_after(page: object, image_url: str, rounds: int,
                      reference: np.ndarray | None, tuned_transpose: bool = True) -> dict:
    """The page's step on its GPU backend along each path of GPU_PATHS, side by side.

    Each path first takes two steps (the first compiles its programs; its gradient, from
    the benchmark's first roll, is checked against `reference` as every browser row is),
    then the paths take turns, a step each, `rounds` times: a shared machine's load then
    weighs on every path alike. `speedup` is tfjs's steady step over the page's. The tuned
    transposed convolution is a WebGPU path, left out with `tuned_transpose` false.
    """
    backend = page.evaluate(SWITCH_PATH, list(GPU_PATHS["dreamframe"]))
    names = [n for n in GPU_PATHS
             if "tuned" not in n or (backend == "webgpu" and tuned_transpose)]
    result = {"backend": backend, "paths": {}}
    try:
        for name in names:
            page.evaluate(SWITCH_PATH, list(GPU_PATHS[name]))
            warm = steps.run_steps(page, image_url, 1, True)
            result["paths"][name] = {"first_ms": warm["times"][0], "times_ms": [],
                                     **steps.verdict(warm["grad"], reference)}
        for _ in range(rounds):
            for name in names:
                page.evaluate(SWITCH_PATH, list(GPU_PATHS[name]))
                result["paths"][name]["times_ms"] += steps.run_steps(page, image_url, 0,
                                                                     False)["times"]
    finally:
        page.evaluate(SWITCH_PATH, list(GPU_PATHS["dreamframe"]))
    for path in result["paths"].values():
        path["steady_ms"] = statistics.median(path["times_ms"]) if path["times_ms"] else None
        if path.get("wrong"):
            path["steady_ms_of_wrong_result"] = path.pop("steady_ms")
    before, after = (result["paths"][n].get("steady_ms") for n in ("tfjs", "dreamframe"))
    result["speedup"] = before / after if before and after else None
    return result

# Programs compiled by dreams of the cat sample at several sizes, one after the other in one
# page (each size drawn into a canvas by the browser, so no tfjs resize runs before it).
SIZES = """async ([url, optionsJson, sizes, shapeUniforms]) => {
  /* WATCH_COMPILES */
  const ready = programs();
  const runs = [];
  for (const [width, height] of sizes) {
    const canvas = document.createElement('canvas');
    canvas.width = width; canvas.height = height;
    canvas.getContext('2d').drawImage(img, 0, 0, width, height);
    const before = programs(), compileBefore = compileMs, start = performance.now();
    const image = window.dreamframe.images.toTensor(tf, canvas);
    const result = await engine.dream(image, optionsJson);
    await result.data();
    result.dispose(); image.dispose();
    runs.push({ size: `${width}x${height}`, programs_added: programs() - before,
                programs_after: programs(), compile_ms: compileMs - compileBefore,
                seconds: (performance.now() - start) / 1000 });
  }
  return { programs_when_ready: ready, runs, options: optionsJson,
           shape_uniforms: tf.env().getBool('WEBGL_USE_SHAPES_UNIFORMS') };
}""".replace("  /* WATCH_COMPILES */", WATCH_COMPILES)

SIZES_DREAMT = ((192, 128), (192, 128), (160, 224))  # width x height: a dream, again, another size


def sizes(page: object, image_url: str, shape_uniforms: bool = True,
          dreams: tuple = SIZES_DREAMT) -> dict:
    """Programs compiled by a dream of the cat sample at each of `dreams` in turn, in one
    fresh page: what a visitor's GPU compiles for a first photo, the same again, and a photo
    of another size. `new_size_share`: programs the last size added, as a share of all the
    programs that existed after the first dream (the issue's goal: at most 5%)."""
    page.set_default_timeout(1_800_000)
    raw = page.evaluate(SIZES, [image_url, OPTIONS, [list(d) for d in dreams], shape_uniforms])
    first = raw["runs"][0]["programs_after"]
    raw["new_size_share"] = raw["runs"][-1]["programs_added"] / first if first else None
    return raw
