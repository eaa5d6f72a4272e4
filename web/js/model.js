// Loads an exported graph model and its manifest, relative to the page, so the site works
// under any sub-path. Needs the global `tf` (vendor/tfjs/tf.min.js). Two models ship: the
// light MobileNetV2 (the default) and the classic InceptionV3, fetched only when chosen.
// The model is warmed up once, so the first dream step is not also the one that uploads
// every weight and compiles every kernel; the warm-up keeps no tensor.
import shared from '../site.json' with { type: 'json' };

// The models this page offers, in the order it lists them, the first the default:
// [{name, label, network}], from their home dreamengine/presets.py (MODELS), written into
// site.json by the site build.
export const MODELS = shared.models;

function folder(name) {
  if (!MODELS.some((m) => m.name === name)) {
    throw new Error(`unknown model ${name}; valid models: ${MODELS.map((m) => m.name).join(', ')}`);
  }
  return `models/${name}/`;
}

export async function loadManifest(name = MODELS[0].name) {
  const base = folder(name);
  const response = await fetch(base + 'manifest.json');
  if (!response.ok) throw new Error(`cannot load ${base}manifest.json: HTTP ${response.status}`);
  return response.json();
}

// [{name, label}] with each model's download size from its manifest, e.g.
// "Classic (InceptionV3, 10.3 MB)". A manifest is a few kB; the weights are not fetched.
export async function choices() {
  return Promise.all(MODELS.map(async ({ name, label, network }) => {
    const manifest = await loadManifest(name);
    const size = (manifest.model.size_bytes / 1e6).toFixed(1);
    return { name, label: `${label} (${network}, ${size} MB)` };
  }));
}

// Loads model `name`; onProgress(fraction) follows the download of its weights.
export async function load({ name = MODELS[0].name, onProgress = null } = {}) {
  const manifest = await loadManifest(name);
  const options = onProgress ? { onProgress } : {};
  const model = await tf.loadGraphModel(folder(name) + manifest.model.file, options);
  const nodes = manifest.outputs.map((o) => o.node);
  tf.dispose(tf.tidy(() => model.execute(tf.zeros([1, 96, 96, 3]), nodes)));
  return { model, manifest, nodes };
}
