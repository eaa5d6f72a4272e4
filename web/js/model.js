// Loads an exported graph model (MobileNetV2 by default) and its manifest, relative to the
// page, so the site works under any sub-path. Needs the global `tf` (vendor/tfjs/tf.min.js).
// The model is warmed up once, so the first dream step is not also the one that uploads
// every weight and compiles every kernel; the warm-up keeps no tensor.

const MODEL_DIR = 'models/mobilenet_v2/';

export async function loadManifest(base = MODEL_DIR) {
  const response = await fetch(base + 'manifest.json');
  if (!response.ok) throw new Error(`cannot load ${base}manifest.json: HTTP ${response.status}`);
  return response.json();
}

export async function load({ base = MODEL_DIR } = {}) {
  const manifest = await loadManifest(base);
  const model = await tf.loadGraphModel(base + manifest.model.file);
  const nodes = manifest.outputs.map((o) => o.node);
  tf.dispose(tf.tidy(() => model.execute(tf.zeros([1, 64, 64, 3]), nodes)));
  return { model, manifest, nodes };
}
