"""Browser rows: each tfjs backend's gradient step, timed AND checked, in headless Chromium.

A time means nothing without a correct result: the old benchmark reported a software
WebGPU step of 50 ms that was a gradient of zeros (a synchronous read had lost the device).
So every row here is the page's own step (`engine.step`, Python over tfjs) from a PNG that
native TensorFlow also reads (same pixels, no resampling in between), with the same roll;
its gradient is read with `await t.data()` only (a `dataSync` kills the software WebGPU
device) and compared with the reference gradient (native TensorFlow's, or the cpu backend's
in `bench.gpu_check`). A zero, non-finite, or off (cosine < 0.999) gradient makes the row
"wrong result", and its time is not reported as a speed.

The first step is reported apart from the steady ones: it compiles (WebGL shaders, WebGPU
pipelines, XNNPACK operators) and allocates, and on a GPU backend can take seconds.
"""

import base64
import json
import statistics

import numpy as np

from bench.native import OPTIONS, cosine, shifts

MIN_COSINE = 0.999
WEIGHTS = {"block_5_expand_relu": 0.5, "block_8_expand_relu": 1.0, "block_12_expand_relu": 1.0}

# The page's step, timed; the first step's gradient returned as base64 float32.
BROWSER_STEPS = """async ([url, options, shifts, keep]) => {
  const { tf, engine, backend } = window.dreamframe;
  const img = new Image(); img.src = url; await img.decode();
  const image = window.dreamframe.images.toTensor(tf, img);
  const times = [];
  let first = null;
  for (let i = 0; i < shifts.length; i++) {
    const start = performance.now();
    const [updated, gradient] = await engine.step(image, options, shifts[i][0], shifts[i][1]);
    await updated.data();
    times.push(performance.now() - start);
    if (i === 0 && keep) first = await gradient.data();
    updated.dispose(); gradient.dispose();
  }
  image.dispose();
  let b64 = null;
  if (first) {
    const bytes = new Uint8Array(first.buffer, first.byteOffset, first.byteLength);
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    b64 = btoa(text);
  }
  return { times, grad: b64, backend: tf.getBackend(), device: backend.device,
           software: backend.software };
}"""

# Whether tfjs's threaded wasm build is what runs: cross-origin isolation, the .wasm files the
# page fetched, and the thread count the backend reports.
THREADS = """() => {
  const tf = window.dreamframe.tf;
  let threads = null;
  try { threads = tf.wasm.getThreadsCount(); } catch (e) { threads = String(e.message || e); }
  const wasm = performance.getEntriesByType('resource').map((e) => e.name.split('/').pop())
    .filter((n) => n.endsWith('.wasm'));
  const pthread = tf.backend().wasm?.PThread;
  return { crossOriginIsolated: self.crossOriginIsolated, threads, wasm_files: wasm,
           hardware_concurrency: navigator.hardwareConcurrency,
           running_worker_threads: pthread ? pthread.runningWorkers.length : null };
}"""
THREADED_WASM = "tfjs-backend-wasm-threaded-simd.wasm"

# The same step written in plain JS against the same tfjs, for the Python-vs-JS ratio:
# roll, gradient of the weighted layer means, roll back, normalise, update, clip.
JS_STEPS = """async ([url, weights, stepSize, repeats]) => {
  const { tf, loaded } = window.dreamframe;
  const img = new Image(); img.src = url; await img.decode();
  const image = window.dreamframe.images.toTensor(tf, img);
  const byLayer = new Map(loaded.manifest.outputs.map((o) => [o.layer, o.node]));
  const layers = Object.keys(weights);
  const nodes = layers.map((l) => byLayer.get(l));
  const roll = (x, dy, dx) => {
    const rollAxis = (t, shift, axis) => {
      const n = t.shape[axis]; shift = ((shift % n) + n) % n;
      if (shift === 0) return t;
      const begin = [0, 0, 0, 0]; begin[axis] = n - shift;
      const size = [-1, -1, -1, -1]; size[axis] = n - shift;
      const tail = tf.slice(t, begin, [-1, -1, -1, -1]);
      return tf.concat([tail, tf.slice(t, [0, 0, 0, 0], size)], axis);
    };
    return rollAxis(rollAxis(x, dy, 1), dx, 2);
  };
  const loss = (x) => {
    const acts = loaded.model.execute(x, nodes);
    const list = Array.isArray(acts) ? acts : [acts];
    return tf.addN(list.map((a, i) => tf.mul(tf.mean(a), weights[layers[i]])));
  };
  const valueAndGrad = tf.valueAndGrad(loss);
  const times = [];
  for (let i = 0; i <= repeats; i++) {
    const start = performance.now();
    const updated = tf.tidy(() => {
      const dy = 5 + 7 * i, dx = 2 + 3 * i;
      const { grad } = valueAndGrad(roll(image, dy, dx));
      const back = roll(grad, -dy, -dx);
      const { variance } = tf.moments(back);
      const normalized = tf.div(back, tf.add(tf.sqrt(variance), 1e-8));
      return tf.clipByValue(tf.add(image, tf.mul(normalized, stepSize)), -1, 1);
    });
    await updated.data();
    times.push(performance.now() - start);
    updated.dispose();
  }
  image.dispose();
  return times.slice(1);
}"""

READY = "() => window.dreamframe && window.dreamframe.engine"


REPORTED_CORES = 4
MORE_CORES = f"""Object.defineProperty(Navigator.prototype, 'hardwareConcurrency',
  {{ get: () => {REPORTED_CORES}, configurable: true }});"""


def open_page(browser: object, url: str, backend: str) -> object:
    """The built page on one backend, engine ready, or an exception saying why not.

    "wasm-threads": wasm in a page made cross-origin isolated by the service worker
    (web/sw.js), so that tfjs may load its threaded build; whether it did is checked apart
    (`thread_proof`). A backend that did not start (the page fell back to another) raises.
    """
    page = browser.new_context().new_page()
    if backend == "wasm-threads":
        # tfjs's wasm backend runs half of navigator.hardwareConcurrency threads (read once
        # as it starts): on 2 cores that is one, and the row would be the wasm row again.
        # Told of 4, it runs 2 threads on the 2 cores: the side-by-side figure asked for.
        page.add_init_script(MORE_CORES)
    name = "wasm" if backend == "wasm-threads" else backend
    query = "backend=wasm&threads=now" if backend == "wasm-threads" else f"backend={backend}"
    page.goto(f"{url}index.html?{query}")
    page.wait_for_function(READY if backend != "wasm-threads" else
                           f"() => self.crossOriginIsolated && ({READY[6:]})", timeout=180_000)
    # The page's own preparation of the GPU (pyscript_app/prepare.py) runs in the background
    # once it is ready: wait until it is over, or it would be measured with what follows.
    page.wait_for_function("() => window.dreamframe.prepared !== undefined", timeout=600_000)
    running = page.evaluate("() => window.dreamframe.tf.getBackend()")
    if running != name:
        reason = page.evaluate("() => window.dreamframe.backend.reason")
        page.context.close()
        raise RuntimeError(f"{backend} did not start (the page runs {running}: {reason})")
    return page


def thread_proof(page: object) -> dict:
    """What shows that the threaded wasm build ran with more than one thread, and why not.

    Loading tfjs-backend-wasm-threaded-simd.wasm is not enough: XNNPACK must also report
    more than one thread (`tf.wasm.getThreadsCount()`), or the "threaded" row is a
    single-threaded run under another name.
    """
    proof = page.evaluate(THREADS)
    loaded = proof["crossOriginIsolated"] and THREADED_WASM in proof["wasm_files"]
    threads = proof["threads"] if isinstance(proof["threads"], int) else 0
    proof["threaded_build_ran"] = bool(loaded and threads > 1)
    if not loaded:
        proof["why_not"] = (f"the threaded build was not loaded (crossOriginIsolated "
                            f"{proof['crossOriginIsolated']}, .wasm loaded: "
                            f"{', '.join(proof['wasm_files']) or 'none'})")
    elif threads <= 1:
        proof["why_not"] = (f"{THREADED_WASM} loaded in a cross-origin isolated page, but "
                            f"XNNPACK runs {proof['threads']} thread "
                            f"(tf.wasm.getThreadsCount(); {proof['running_worker_threads']} "
                            f"worker threads running): tfjs takes half of "
                            f"navigator.hardwareConcurrency ({proof['hardware_concurrency']})")
    return proof


def decode(b64: str) -> np.ndarray:
    """base64 float32 (from the page) -> numpy."""
    return np.frombuffer(base64.b64decode(b64), dtype=np.float32)


def verdict(gradient: np.ndarray, reference: np.ndarray | None) -> dict:
    """Correctness of one gradient: finite, not zero, cosine to the reference >= 0.999."""
    finite = bool(np.all(np.isfinite(gradient)))
    zero = bool(finite and not np.any(gradient))
    result = {"finite": finite, "zero": zero, "cosine": None}
    if reference is not None and finite and not zero:
        result["cosine"] = cosine(gradient, reference)
    if not finite:
        result["wrong"] = "gradient has NaN or infinite values"
    elif zero:
        result["wrong"] = "gradient is all zeros"
    elif result["cosine"] is None:
        result["wrong"] = None  # nothing to compare with: not checked
        result["unchecked"] = True
    elif not result["cosine"] >= MIN_COSINE:
        result["wrong"] = f"gradient cosine to the reference {result['cosine']:.4f} < {MIN_COSINE}"
    else:
        result["wrong"] = None
    return result


def run_steps(page: object, image_url: str, repeats: int, keep: bool) -> dict:
    """1 + `repeats` page steps: times in ms, the first step's gradient (numpy) if `keep`."""
    options = json.dumps(dict(OPTIONS, weights=WEIGHTS))
    out = page.evaluate(BROWSER_STEPS, [image_url, options, shifts(repeats + 1), keep])
    out["grad"] = decode(out["grad"]) if keep else None
    return out


def step_row(page: object, image_url: str, size: int, repeats: int,
             reference: np.ndarray | None, check: bool = True) -> dict:
    """One backend at one size: first step, steady median, correctness of the first step."""
    out = run_steps(page, image_url, repeats, check)
    row = {"first_ms": out["times"][0],
           "steady_ms": statistics.median(out["times"][1:]) if repeats else None,
           "times_ms": out["times"][1:], "device": out["device"],
           "software": out["software"]}
    if check:
        row.update(verdict(out["grad"], reference))
        if row.get("wrong"):
            row["steady_ms_of_wrong_result"] = row.pop("steady_ms")
            row["first_ms_of_wrong_result"] = row.pop("first_ms")
    return row


def js_ratio(page: object, image_url: str, size: int, repeats: int) -> dict:
    """Python-driven step (engine.step, untiled) against the same step in plain JS."""
    options = json.dumps(dict(OPTIONS, weights=WEIGHTS, tile_size=max(512, size)))
    python = page.evaluate(BROWSER_STEPS, [image_url, options, shifts(repeats + 1), False])
    js = page.evaluate(JS_STEPS, [image_url, WEIGHTS, 0.02, repeats])
    p, j = statistics.median(python["times"][1:]), statistics.median(js)
    return {"python_ms": p, "js_ms": j, "ratio": p / j}


# Every wasm kernel wrapped with a timer (nested kernels, e.g. the convs inside an input
# gradient, counted within their caller), then page steps: where a step's time goes.
PROFILE = """async ([url, options, repeats]) => {
  const { tf, engine } = window.dreamframe;
  const times = new Map();
  let depth = 0;
  for (const k of tf.getKernelsForBackend(tf.getBackend())) {
    const f = k.kernelFunc;
    const timed = (args) => {
      depth++;
      const start = performance.now();
      try { return f(args); } finally {
        depth--;
        if (depth === 0) times.set(k.kernelName, (times.get(k.kernelName) || 0)
          + performance.now() - start);
      }
    };
    if (f.dreamframe) timed.dreamframe = true;
    tf.unregisterKernel(k.kernelName, k.backendName);
    tf.registerKernel({ ...k, kernelFunc: timed });
  }
  const img = new Image(); img.src = url; await img.decode();
  const image = window.dreamframe.images.toTensor(tf, img);
  let wall = 0;
  for (let i = 0; i <= repeats; i++) {
    if (i === 1) { times.clear(); wall = 0; }
    const start = performance.now();
    const [updated, gradient] = await engine.step(image, options, 5 + i, 3 + i);
    await updated.data();
    wall += performance.now() - start;
    updated.dispose(); gradient.dispose();
  }
  image.dispose();
  return { wall_ms: wall / repeats,
           kernels_ms: Object.fromEntries([...times].map(([k, v]) => [k, v / repeats])) };
}"""
# The kernels that are convolutions (XNNPACK's, or the page's input gradients made of them).
CONVOLUTIONS = {"Conv2D", "FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2D",
                "Conv2DBackpropInput", "DepthwiseConv2dNativeBackpropInput"}


def kernel_profile(page: object, image_url: str, repeats: int) -> dict:
    """Where the page's steady step goes: convolutions, other kernels, outside kernels (ms).

    The page's kernels stay wrapped afterwards: call it last on a page."""
    options = json.dumps(dict(OPTIONS, weights=WEIGHTS))
    out = page.evaluate(PROFILE, [image_url, options, repeats])
    kernels = out["kernels_ms"]
    conv = sum(v for k, v in kernels.items() if k in CONVOLUTIONS)
    other = sum(v for k, v in kernels.items() if k not in CONVOLUTIONS)
    top = sorted(kernels.items(), key=lambda kv: -kv[1])[:8]
    return {"step_ms": out["wall_ms"], "convolutions_ms": conv, "other_kernels_ms": other,
            "outside_kernels_ms": out["wall_ms"] - conv - other,
            "top_ms": {k: round(v, 1) for k, v in top}}
