// Runs the page's real dream-engine backend, dreamengine/tfjs_backend.py, under
// Node: Pyodide from npm for the Python, tfjs from npm (cpu backend) for the tensors, the
// committed graph model. Every case of tests/backend_cases.py is run on it, so that
// tests/test_backends_agree.py can compare it with native/tf_backend.py on the same inputs.
// Usage: node tests/backend_methods.mjs JOB_JSON
// JOB_JSON: {"repo": "...", "inputs": {name: {"file": "x.bin", "shape": [...]}}, "out": "..."}
// Writes {"results": {...}, "leaked": n, "backend": "cpu"} to `out` (float32 .bin inputs).
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadPyodide } from 'pyodide';

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const modelDir = path.join(job.repo, 'models', 'mobilenet_v2');
const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, 'manifest.json'), 'utf8'));
const modelJson = JSON.parse(fs.readFileSync(path.join(modelDir, manifest.model.file), 'utf8'));
const joined = Buffer.concat(modelJson.weightsManifest.flatMap((group) =>
  group.paths.map((p) => fs.readFileSync(path.join(modelDir, p)))));

await tf.setBackend('cpu');
const model = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: modelJson.modelTopology,
  weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
  weightData: joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength),
  format: modelJson.format, generatedBy: modelJson.generatedBy,
  convertedBy: modelJson.convertedBy, signature: modelJson.signature,
}));
const loaded = { model, manifest }; // what web/js/model.js's load() gives the page

const pyodide = await loadPyodide();
// The page's `pyscript.ffi`, as PyScript defines it for Pyodide.
pyodide.FS.mkdirTree('/lib/pyscript');
pyodide.FS.writeFile('/lib/pyscript/__init__.py', '');
pyodide.FS.writeFile('/lib/pyscript/ffi.py', [
  'from js import Object',
  'from pyodide.ffi import JsNull, create_proxy',
  'from pyodide.ffi import to_js as _to_js',
  '',
  'def to_js(value, **kw):',
  '    kw.setdefault("dict_converter", Object.fromEntries)',
  '    return _to_js(value, **kw)',
  '',
  'def is_none(value):',
  '    return value is None or isinstance(value, JsNull)',
].join('\n'));
const engineDir = path.join(job.repo, 'dreamengine');
pyodide.FS.mkdirTree('/lib/dreamengine');
for (const name of fs.readdirSync(engineDir).filter((n) => n.endsWith('.py'))) {
  pyodide.FS.writeFile(`/lib/dreamengine/${name}`, fs.readFileSync(path.join(engineDir, name)));
}
pyodide.FS.writeFile('/lib/backend_cases.py',
  fs.readFileSync(path.join(job.repo, 'tests', 'backend_cases.py')));

const inputs = {};
for (const [name, { file, shape }] of Object.entries(job.inputs)) {
  const raw = fs.readFileSync(file);
  inputs[name] = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), shape);
}
const before = tf.memory().numTensors;
pyodide.globals.set('tf', tf);
pyodide.globals.set('loaded', loaded);
pyodide.globals.set('js_inputs', inputs);
let text;
try {
  text = await pyodide.runPythonAsync(`
import json, sys
sys.path.insert(0, '/lib')
import backend_cases
from dreamengine.tfjs_backend import TfjsBackend

ops = TfjsBackend(tf, loaded)
layers = [loaded.manifest.outputs[i].layer for i in range(loaded.manifest.outputs.length)]
names = list(js_inputs.object_keys())
json.dumps(await backend_cases.run(ops, {n: getattr(js_inputs, n) for n in names}, layers))
`);
} catch (error) { // the Python traceback, not Pyodide's minified source
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
const leaked = tf.memory().numTensors - before;
fs.writeFileSync(job.out, JSON.stringify({ results: JSON.parse(text), leaked, backend: tf.getBackend() }));
