// Page start-up glue. In parallel: start the Python interpreter (PyScript core plus
// MicroPython by default, or Pyodide with ?interpreter=pyodide), and pick a tfjs backend and
// load the model. Everything is published on `window.dreamframe`; the Python side
// (pyscript_app/main.py) awaits `window.dreamframeBoot`.
import { LABELS, chooseBackend, fallBack, wasmHeapNearlyFull, watchGpuLoss } from './backends.js';
import * as embed from './embed.js';
import { registerGpuKernels, setGpuKernels } from './gpu-kernels.js';
import { registerGradientFixes } from './gradients.js';
import { guard, takeFault } from './guard.js';
import * as images from './images.js';
import * as dreamModel from './model.js';
import * as prepare from './prepare.js';
import { registerWasmKernels, setFilterGradients } from './wasm-kernels.js';

const params = new URLSearchParams(location.search);
const INTERPRETERS = { micropython: 'mpy', pyodide: 'py' };

function startPython() {
  const name = INTERPRETERS[params.get('interpreter')] ? params.get('interpreter') : 'micropython';
  const kind = INTERPRETERS[name];
  const script = document.createElement('script');
  script.type = kind;
  script.src = './pyscript_app/main.py';
  script.setAttribute('config', `./pyscript-${kind}.json`);
  document.body.append(script);
  import('../vendor/pyscript/core.js').then(({ hooks }) => {
    // PyScript compiles its worker hooks with Function(), which a Content-Security-Policy
    // without 'unsafe-eval' forbids, even when no worker is used. Its only default worker
    // hook sets up `pyscript` inside workers; this page runs Python on the main thread only.
    // The hooks are read once the interpreter's config has been fetched, after this runs.
    hooks.worker.onBeforeRunAsync.clear();
  });
  return name;
}

// A model, with the image helpers told its input range (pixels scale to it, and back).
async function loadModel(options) {
  const loaded = await dreamModel.load(options);
  images.useRange(loaded.manifest.input.range);
  return loaded;
}

async function boot(interpreter) {
  registerWasmKernels(tf);
  registerGradientFixes(tf);
  const backend = await chooseBackend(tf, params.get('backend'));
  registerGpuKernels(tf); // after the choice: WebGPU's bundle is loaded only where it runs
  const name = dreamModel.MODELS.some((m) => m.name === params.get('model'))
    ? params.get('model') : dreamModel.MODELS[0].name;
  const loaded = await loadModel({ name });
  performance.mark('dreamframe:model-ready');
  // A lost WebGL context or WebGPU device never settles the reads in flight: every read
  // races against a promise that is rejected, with the reason, when the GPU goes away.
  const state = { gpuLost: null, lost: null, reject: null };
  const arm = () => {
    state.lost = new Promise((_, reject) => { state.reject = reject; });
    state.lost.catch(() => {}); // rejected only for the read it ends
  };
  const watch = () => watchGpuLoss(tf, (why) => {
    state.gpuLost = why;
    state.reject(new Error(why));
  });
  arm();
  watch();
  const query = JSON.stringify(Object.fromEntries(params));
  window.dreamframe = { tf, dreamModel, loaded, backend, images, embed, interpreter, query,
    labels: LABELS,
    // The GPU's programs compiled before the first dream (pyscript_app/prepare.py), and
    // where that stands: {state, size, fraction, slices, compiled, programs, ...}.
    prepare,
    preparation: null,
    setFilterGradients,
    setGpuKernels,
    // How Python calls JS without a JS exception ever unwinding through the interpreter.
    guard,
    takeFault,
    // Loads another model (fetching its weights, with progress) in place of the current one.
    async switchModel(name, onProgress) {
      const next = await loadModel({ name, onProgress });
      window.dreamframe.loaded.model.dispose();
      window.dreamframe.loaded = next;
      return next;
    },
    // The video recorder (web/js/video.js), fetched only when a zoom video is made.
    loadVideo: () => import('./video.js'),
    // Reading and writing videos (web/js/media.js: openVideo, createVideoWriter), fetched
    // only when a video is opened.
    loadMedia: () => import('./media.js'),
    // A macrotask: lets the browser paint and handle clicks between dream steps. (MicroPython's
    // asyncio.sleep(0) does not return to the browser's event loop.)
    yieldToBrowser: () => new Promise((resolve) => setTimeout(resolve, 0)),
    // Why the GPU went away (a string), or null while it works.
    gpuLost: () => state.gpuLost,
    // A tensor's values, asynchronously (never dataSync: it stalls a GPU and lost the
    // software WebGPU device here); rejects with the reason if the GPU is lost meanwhile.
    read: (tensor) => Promise.race([tensor.data(), state.lost]),
    // Whether a failure now is most likely the wasm heap running out (see backends.js).
    memoryFull: () => wasmHeapNearlyFull(tf),
    // Move to another backend after a failure and reload the model there; the caller
    // rebuilds its tensors (those on a lost GPU are gone). `broken`: the backend computed no
    // gradient, skip it for the rest of the visit. Returns the new backend info.
    async recover({ reset = false, broken = false } = {}) {
      const failed = tf.getBackend();
      const gpuLost = state.gpuLost !== null;
      const next = await fallBack(tf, failed,
        { gpuLost, reset, broken, current: window.dreamframe.backend });
      state.gpuLost = null;
      arm();
      watch(); // a restarted WebGL/WebGPU backend has a new context to watch
      window.dreamframe.loaded = await loadModel({ name: window.dreamframe.loaded.manifest.model.name });
      window.dreamframe.backend = next;
      return next;
    },
  };
  return window.dreamframe;
}

// Threads for wasm need cross-origin isolation; web/sw.js provides it from the next load on,
// and keeps the site for visits without a network. Registered once the model is ready (or
// failed), so that its copy of the site does not compete with the first visit's own
// downloads (most files are then in the browser's HTTP cache, only revalidated). Not in an
// iframe (isolation would need the embedding page to be isolated too), and `?threads=off`
// opts out; a worker registered by an earlier visit controls both anyway. `?threads=now`
// reloads once as soon as the worker is active.
async function isolate() {
  if (self.crossOriginIsolated || !('serviceWorker' in navigator) || embed.embedded
      || params.get('threads') === 'off') return;
  try {
    const registration = await navigator.serviceWorker.register('sw.js');
    if (params.get('threads') === 'now') {
      await navigator.serviceWorker.ready;
      if (!registration.active) return;
      location.reload();
    }
  } catch {
    // Not allowed here (private mode, file://): the page simply runs without threads.
  }
}

if (params.has('embed')) document.body.classList.add('embed');
const interpreter = startPython();
window.dreamframeBoot = boot(interpreter);
window.dreamframeBoot.then(isolate, isolate);
window.dreamframeBoot.catch((error) => {
  const status = document.getElementById('status');
  if (status) {
    status.textContent = `Could not start: ${error.message}`;
    status.classList.add('error');
  }
});
