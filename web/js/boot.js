// Page start-up glue: register the wasm gradient kernels, pick a backend, load the model,
// then publish everything on `window.dreamframe` for the Python side (pyscript_app/main.py),
// which awaits `window.dreamframeBoot`.
import { chooseBackend } from './backends.js';
import * as dreamModel from './model.js';
import { registerWasmGradients } from './wasm-gradients.js';

// What the model offers, in words first; textContent only, never HTML.
function listLayers(manifest) {
  const list = document.getElementById('layers');
  if (!list) return;
  for (const out of manifest.outputs) {
    const item = document.createElement('li');
    item.textContent = `${out.label}: ${out.layer} (stride ${out.stride}, ${out.channels} channels)`;
    list.append(item);
  }
}

async function boot() {
  const params = new URLSearchParams(location.search);
  registerWasmGradients(tf);
  const backend = await chooseBackend(tf, params.get('backend'));
  const loaded = await dreamModel.load();
  listLayers(loaded.manifest);
  window.dreamframe = { tf, dreamModel, loaded, backend };
  return window.dreamframe;
}

window.dreamframeBoot = boot();
