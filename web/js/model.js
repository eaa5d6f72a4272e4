// Loads the exported MobileNetV2 graph model and its manifest, relative to the page, so the
// site works under any sub-path. Needs the global `tf` (vendor/tfjs/tf.min.js).
// Errors list the valid choices; the model is warmed up once so the first dream step is not
// also the one that compiles every kernel.

const MODEL_DIR = 'models/mobilenet_v2/';

export async function loadManifest(base = MODEL_DIR) {
  const response = await fetch(base + 'manifest.json');
  if (!response.ok) throw new Error(`cannot load ${base}manifest.json: HTTP ${response.status}`);
  return response.json();
}

export async function load({ base = MODEL_DIR, warmup = true } = {}) {
  const manifest = await loadManifest(base);
  const model = await tf.loadGraphModel(base + manifest.model.file);
  const nodes = manifest.outputs.map((o) => o.node);
  if (warmup) {
    tf.tidy(() => model.execute(tf.zeros([1, 64, 64, 3]), nodes));
  }
  return { model, manifest, nodes };
}

// Activations of the named layers (all exported ones by default) for a [1, h, w, 3] image
// in the manifest's input range. Caller owns the returned tensors.
export function activations({ model, manifest }, image, layers = null) {
  const byName = new Map(manifest.outputs.map((o) => [o.layer, o]));
  const chosen = layers ?? manifest.outputs.map((o) => o.layer);
  for (const name of chosen) {
    if (!byName.has(name)) {
      throw new Error(`unknown layer ${name}; valid layers: ${[...byName.keys()].join(', ')}`);
    }
  }
  const result = model.execute(image, chosen.map((name) => byName.get(name).node));
  return Array.isArray(result) ? result : [result];
}
