// Picks the fastest tfjs backend this visitor's machine really has:
//   WebGPU on a hardware adapter -> WebGL on a hardware GPU -> wasm (SIMD; threads when the
//   page is cross-origin isolated) -> cpu.
// A software renderer (SwiftShader, llvmpipe, Microsoft Basic Render) counts as no GPU: it is
// slower than wasm by 10-100x here. Where the GPU's name is masked or unknown (WebKit calls
// every GPU "Apple GPU", Firefox's fingerprinting protection says "Mozilla", a browser
// without WEBGL_debug_renderer_info), the name cannot tell: the page times one convolution
// on WebGL and on wasm and keeps the faster (`measureGpu`), remembered for later visits.
// `override` (a backend name) forces one, for tests and the URL. A backend that failed the
// engine's health check (it computed no gradient) is remembered for the rest of the visit
// (sessionStorage) and skipped. Needs the global `tf` and vendor/tfjs/ next to the page.

import shared from '../site.json' with { type: 'json' };
import { fixShaderKeys, registerWebglKernels } from './webgl-kernels.js';

const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software|basic render/i;
const VENDOR = 'vendor/tfjs/';
const BROKEN_KEY = 'dreamframe:broken-backends';
// Fastest first, the order of fallback; their home is pyscript_app/settings.py (BACKENDS),
// written into site.json by the site build.
export const BACKENDS = shared.backends;
export const LABELS = { webgpu: 'WebGPU', webgl: 'WebGL', wasm: 'WebAssembly', cpu: 'CPU' };

// Renderer names that name no GPU: what WebKit says of every GPU, what Firefox says with
// resistFingerprinting, and the generic strings of a browser that hides the renderer.
const MASKED_RENDERER = /^(apple gpu|mozilla|webkit|webkit webgl|generic renderer|unknown renderer)$/i;
const MEASURED_KEY = 'dreamframe:measured-backend';

function webglRenderer() {
  try {
    const gl = document.createElement('canvas').getContext('webgl2');
    if (!gl) return null;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const name = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return String(name);
  } catch {
    return null;
  }
}

// Whether `renderer` says which GPU it is: a masked or unknown name cannot be trusted either
// way (a real Apple GPU and Mesa's software rasteriser both say "Apple GPU" in WebKit).
export function rendererIsMasked(renderer) {
  return !renderer || MASKED_RENDERER.test(renderer.trim());
}

// The backend to keep after timing the same work on both: the GPU only when it was faster.
export function pickByMeasurement(gpuMs, wasmMs) {
  if (!Number.isFinite(gpuMs)) return 'wasm';
  if (!Number.isFinite(wasmMs)) return 'webgl';
  return gpuMs < wasmMs ? 'webgl' : 'wasm';
}

// One convolution the size of a dream's middle layers (128x128x32, 3x3, 32 filters: 151
// million multiply-adds), timed after its compilation: the median of three, in ms. Large
// enough that a real GPU's compute, not its read-back latency, decides (a few ms there), and
// a software GPU shows itself (hundreds of ms); wasm takes tens of ms.
async function timeConvolution(tf) {
  const x = tf.randomUniform([1, 128, 128, 32], -1, 1, 'float32', 1);
  const w = tf.randomUniform([3, 3, 32, 32], -0.1, 0.1, 'float32', 2);
  const once = async () => {
    const start = performance.now();
    const y = tf.conv2d(x, w, 1, 'same');
    await y.data();
    y.dispose();
    return performance.now() - start;
  };
  try {
    await once(); // compiles the program (WebGL) or the operator (XNNPACK)
    const times = [await once(), await once(), await once()];
    return times.sort((a, b) => a - b)[1];
  } finally {
    x.dispose();
    w.dispose();
  }
}

function rememberedMeasurement(renderer) {
  try {
    const saved = JSON.parse(localStorage.getItem(MEASURED_KEY) || 'null');
    return saved && saved.renderer === renderer && saved.agent === navigator.userAgent ? saved : null;
  } catch {
    return null; // storage blocked: measure again
  }
}

// WebGL against wasm on this device, when the GPU's name cannot tell: {choice, gpuMs, wasmMs,
// renderer, remembered}. Measured now, both backends have started (wasm last).
async function measureGpu(tf, renderer) {
  const saved = rememberedMeasurement(renderer);
  if (saved) return { ...saved, remembered: true };
  let gpuMs = NaN;
  let wasmMs = NaN;
  if (!(await tryBackend(tf, 'webgl'))) {
    try { gpuMs = await timeConvolution(tf); } catch { /* counts as slower */ }
  }
  if (!(await tryBackend(tf, 'wasm'))) {
    try { wasmMs = await timeConvolution(tf); } catch { /* counts as slower */ }
  }
  const choice = pickByMeasurement(gpuMs, wasmMs);
  const result = { choice, gpuMs, wasmMs, renderer, agent: navigator.userAgent };
  try {
    localStorage.setItem(MEASURED_KEY, JSON.stringify(result));
  } catch {
    // Not remembered: the next visit measures again.
  }
  return { ...result, remembered: false };
}

function measuredReason(m) {
  const ms = (v) => (Number.isFinite(v) ? `${v.toFixed(0)} ms` : 'did not run');
  const when = m.remembered ? 'measured on an earlier visit' : 'measured now';
  return `the GPU's name is masked ("${m.renderer}"), so speed decided, ${when}: a ` +
    `convolution took ${ms(m.gpuMs)} on WebGL and ${ms(m.wasmMs)} on WebAssembly`;
}

async function webgpuAdapter() {
  if (!navigator.gpu) return null;
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return null;
    const info = adapter.info ?? {};
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
    // Chromium 156 says "fallback" (software) in adapter.info only.
    const fallback = info.isFallbackAdapter || adapter.isFallbackAdapter;
    return { name: name || 'unknown adapter', software: Boolean(fallback) || SOFTWARE_RENDERER.test(name) };
  } catch {
    return null;
  }
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(script);
  });
}

// Backends that computed no gradient earlier in this visit.
export function brokenBackends() {
  try {
    return JSON.parse(sessionStorage.getItem(BROKEN_KEY) || '[]');
  } catch {
    return []; // storage blocked (sandboxed frame, privacy settings): remember nothing
  }
}

function rememberBroken(name) {
  try {
    sessionStorage.setItem(BROKEN_KEY, JSON.stringify([...new Set([...brokenBackends(), name])]));
  } catch {
    // Not stored: this page still moves on, only a reload would try `name` again.
  }
}

// WebGL settings, made before the backend starts (tfjs reads them as it builds programs):
// - shape uniforms: with WEBGL_USE_SHAPES_UNIFORMS tfjs passes sizes to a compiled program as
//   uniforms, so one program serves every size of the tensors it supports, instead of one
//   per size (a new photo size, octave or tile compiled hundreds of programs again). tfjs
//   4.22 keys those programs wrongly for some texture layouts (the model's input gradient at
//   451x300 after one at 67x83: relative error 1.0 against cpu); web/js/webgl-kernels.js
//   corrects the key once the backend has started (`fixShaderKeys`), and
//   tests/test_gpu_backends.py checks the gradient at that size and every program reuse.
//   registerWebglKernels replaces the kernels whose tfjs programs still depend on the size.
//   The price: tfjs's programs do their index arithmetic on uniforms, not constants, so a
//   steady step ran about 1.2x slower on SwiftShader (no real GPU measured) against a first
//   dream compiling a ninth of the programs. Set explicitly, so that a future default
//   cannot change it unseen.
// - a cap on the pool of freed textures: tfjs keeps every freed texture for reuse by exact
//   shape, so each new size adds a set and GPU memory only grows (to 426 MB over ten sizes
//   here); past the cap freed textures are deleted.
export const TEXTURE_POOL_BYTES = 128 * 2 ** 20;

function configureWebgl(tf) {
  tf.env().set('WEBGL_USE_SHAPES_UNIFORMS', true);
  registerWebglKernels(tf); // programs that serve every size (once: the registry is global)
  tf.env().set('WEBGL_DELETE_TEXTURE_THRESHOLD', TEXTURE_POOL_BYTES);
}

// What the page changes in a WebGL backend that has started (per instance: a restarted
// backend is a new one).
function adjustWebgl(tf) {
  fixShaderKeys(tf.backend());
}

// Why a backend that started cannot dream here, or null. WebGL without float32 render
// targets (many phones) stores every intermediate as a half float: sums past 65504 overflow
// and a mean objective's gradient came back all NaN at 256 px (cosine to cpu 0.99 at best).
function unfit(tf, name) {
  if (name === 'webgl' && !tf.env().getBool('WEBGL_RENDER_FLOAT32_CAPABLE')) {
    return 'this GPU renders only half-float textures in WebGL, too coarse for gradients';
  }
  return null;
}

// Starts backend `name`; returns null, or why it cannot be used here.
async function tryBackend(tf, name) {
  try {
    if (name === 'webgpu' && !tf.findBackendFactory('webgpu')) {
      await loadScript(VENDOR + 'tf-backend-webgpu.min.js'); // only fetched when it can be used
    }
    if (name === 'wasm') {
      tf.wasm.setWasmPaths(new URL(VENDOR, document.baseURI).href);
      // Threads: tfjs 4.22 gives XNNPACK half of navigator.hardwareConcurrency (at most 8),
      // and caps tf.wasm.setThreadsCount at that same half (backend.cc), so asking for
      // every core changes nothing: the count is left to tfjs and read back in describe().
    }
    if (name === 'webgl') configureWebgl(tf);
    if (!(await tf.setBackend(name))) return `${LABELS[name]} did not start`;
    if (name === 'webgl') adjustWebgl(tf);
  } catch (error) {
    return `${LABELS[name]} did not start (${error?.message || error})`;
  }
  const why = unfit(tf, name);
  if (why) drop(tf, name);
  return why;
}

// The most float32 values one tensor may hold on the current backend, or null for no
// limit: a WebGL texture is at most MAX_TEXTURE_SIZE texels a side, one value per texel when
// unpacked (tfjs unpacks some tensors of every step); a WebGPU buffer binding has its limit.
function maxElements(tf, name) {
  if (name === 'webgl') return tf.env().getNumber('WEBGL_MAX_TEXTURE_SIZE') ** 2;
  if (name === 'webgpu') {
    const bytes = tf.backend()?.device?.limits?.maxStorageBufferBindingSize;
    return bytes ? Math.floor(bytes / 4) : null;
  }
  return null;
}

// What runs a backend, in words (the GPU's own name for WebGL/WebGPU, detected, never
// typed), and its size limit: {gpu, device, software, maxElements}.
async function describe(tf, name) {
  const limits = { maxElements: maxElements(tf, name) };
  if (name === 'webgpu') {
    const adapter = await webgpuAdapter();
    return { gpu: true, device: adapter ? adapter.name : 'unknown adapter', software: adapter?.software ?? true, ...limits };
  }
  if (name === 'webgl') {
    const renderer = webglRenderer() ?? 'unknown renderer';
    return { gpu: true, device: renderer, software: SOFTWARE_RENDERER.test(renderer), ...limits };
  }
  if (name === 'wasm') {
    // What tfjs really runs: its threaded build (cross-origin isolated pages only) with half
    // of navigator.hardwareConcurrency threads, which is 1 on a 2-core machine; read, not
    // assumed.
    const count = self.crossOriginIsolated ? tf.wasm.getThreadsCount() : 1;
    const threads = self.crossOriginIsolated
      ? `threaded build, ${count} thread${count === 1 ? '' : 's'}`
      : 'no threads (page not cross-origin isolated)';
    return { gpu: false, device: `CPU, wasm SIMD, ${threads}`, software: false, ...limits };
  }
  return { gpu: false, device: 'CPU, plain JavaScript', software: false, ...limits };
}

// Calls onLost() when the WebGL context of the current backend is lost (driver reset, GPU
// taken by another tab, WEBGL_lose_context). WebGPU reports loss through device.lost.
export function watchGpuLoss(tf, onLost) {
  const backend = tf.backend();
  const canvas = backend?.gpgpu?.gl?.canvas;
  if (canvas) {
    canvas.addEventListener('webglcontextlost', (event) => { event.preventDefault(); onLost('WebGL context lost'); });
  }
  backend?.device?.lost?.then((info) => onLost(`WebGPU device lost: ${info.message || info.reason}`));
}

// Removes a backend that failed, even when its own clean-up fails too (an overflowed wasm heap
// traps again, a lost GPU may throw): what it held goes with the instance.
function drop(tf, name) {
  const broken = tf.findBackend(name);
  if (!broken) return;
  try {
    broken.dispose(); // frees its GPU memory when there is still a GPU to talk to
  } catch {
    // Nothing left to save.
  }
  broken.dispose = () => {}; // removeBackend() calls it again
  tf.removeBackend(name);
}

// After a failure of backend `failed`: the next backend that works, in BACKENDS order.
// `gpuLost` skips the GPU ones (a lost GPU rarely comes back at once); `broken` (the backend
// computed no gradient) remembers `failed` for the visit; `reset` re-creates the same backend
// first (after running out of memory: an overflowed wasm heap is unusable for good, and a
// fresh WebGL/WebGPU backend starts with all its memory free).
export async function fallBack(tf, failed, { gpuLost = false, reset = false, broken = false, current = null } = {}) {
  const factory = tf.findBackendFactory(failed);
  drop(tf, failed);
  if (broken) rememberBroken(failed);
  if (reset && factory) {
    tf.registerBackend(failed, factory);
    if (!(await tryBackend(tf, failed))) {
      return current ?? { name: failed, ...(await describe(tf, failed)), reason: 'restarted' };
    }
  }
  for (const name of BACKENDS.slice(BACKENDS.indexOf(failed) + 1)) {
    if (gpuLost && (name === 'webgl' || name === 'webgpu')) continue;
    if (!(await tryBackend(tf, name))) {
      return { name, ...(await describe(tf, name)), reason: `${LABELS[failed]} failed` };
    }
  }
  throw new Error('no backend is left to run on');
}

// Whether the wasm backend's heap is within `margin` bytes of its 4 GiB maximum. A failure
// then is almost surely memory, whatever it says: malloc returns 0 when the heap cannot
// grow, and tfjs goes on to fail in many ways (seen here: "memory access out of bounds",
// "table index is out of bounds", "Invalid typed array length").
export function wasmHeapNearlyFull(tf, margin = 512 * 2 ** 20) {
  if (tf.getBackend() !== 'wasm') return false;
  const heap = tf.backend()?.wasm?.HEAPU8?.buffer?.byteLength ?? 0;
  return heap + margin >= 2 ** 32;
}

// Returns {name, gpu, device, software, reason}: what runs, whether it is a GPU (and a
// software one), and why it was chosen.
export async function chooseBackend(tf, override = null) {
  const refusals = [];
  if (override) {
    if (!BACKENDS.includes(override)) {
      throw new Error(`unknown backend ${override}; valid backends: ${BACKENDS.join(', ')}`);
    }
    const why = await tryBackend(tf, override);
    if (!why) return { name: override, ...(await describe(tf, override)), reason: 'backend chosen in the URL' };
    refusals.push(`${override} was asked for, but ${why}`);
  }
  const skip = brokenBackends();
  const adapter = skip.includes('webgpu') || override ? null : await webgpuAdapter();
  if (adapter && !adapter.software) {
    const why = await tryBackend(tf, 'webgpu');
    if (!why) return { name: 'webgpu', ...(await describe(tf, 'webgpu')), reason: 'hardware WebGPU adapter' };
    refusals.push(why);
  }
  const renderer = skip.includes('webgl') || override === 'webgl' ? null : webglRenderer();
  if (renderer !== null && rendererIsMasked(renderer) && !skip.includes('wasm')) {
    const measured = await measureGpu(tf, renderer);
    const name = measured.choice;
    // Both backends ran when measured now; a remembered choice starts its backend only.
    const started = measured.remembered ? !(await tryBackend(tf, name)) : await tf.setBackend(name);
    if (started) { // the other stays registered: a later fallback may need it
      return { name, ...(await describe(tf, name)), reason: measuredReason(measured), measured };
    }
    refusals.push(`${LABELS[name]} did not start again after its measurement`);
  }
  if (renderer && !rendererIsMasked(renderer) && !SOFTWARE_RENDERER.test(renderer)) {
    const why = await tryBackend(tf, 'webgl');
    if (!why) return { name: 'webgl', ...(await describe(tf, 'webgl')), reason: 'hardware WebGL' };
    refusals.push(why);
  }
  if (!refusals.length) {
    refusals.push(renderer ? `no hardware GPU (WebGL renderer: ${renderer})` : 'no WebGL');
  }
  if (skip.includes('webgl') || skip.includes('webgpu')) {
    refusals.push(`the GPU computed no gradient earlier in this visit (${skip.map((n) => LABELS[n]).join(', ')})`);
  }
  for (const name of ['wasm', 'cpu']) {
    if (name === override || (skip.includes(name) && name !== 'cpu')) continue;
    if (!(await tryBackend(tf, name))) {
      return { name, ...(await describe(tf, name)), reason: refusals.join('; ') };
    }
  }
  throw new Error('no backend is available here');
}
