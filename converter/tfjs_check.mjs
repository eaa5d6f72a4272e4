// Runs an exported TF.js graph model under Node (tfjs from npm, wasm backend: XNNPACK, the
// kernels the page runs on a visitor's CPU, and a tenth of the time of the plain-JS cpu
// backend) so the converter can compare it with Keras. Usage: node tfjs_check.mjs MODEL_DIR JOB_JSON
// JOB_JSON: {"nodes": [...], "inputs": [{"file": "x.bin", "shape": [1,h,w,3]}], "out_dir": "..."}
// Writes <out_dir>/<input index>_<output index>.bin (float32) and prints the output shapes.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

// The .wasm files beside the package's own entry point (dist/), read from disk.
const wasmEntry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
setWasmPaths(path.dirname(wasmEntry) + path.sep);

const [modelDir, jobFile] = process.argv.slice(2);
const job = JSON.parse(fs.readFileSync(jobFile, 'utf8'));
const modelJson = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
const buffers = modelJson.weightsManifest.flatMap((group) =>
  group.paths.map((p) => fs.readFileSync(path.join(modelDir, p))));
const joined = Buffer.concat(buffers);
const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);

if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend did not start');
const model = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: modelJson.modelTopology, weightSpecs: specs, weightData,
  format: modelJson.format, generatedBy: modelJson.generatedBy,
  convertedBy: modelJson.convertedBy, signature: modelJson.signature,
}));
const shapes = [];
job.inputs.forEach((input, i) => {
  const raw = fs.readFileSync(input.file);
  const data = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const outputs = tf.tidy(() => {
    const result = model.execute(tf.tensor(data, input.shape), job.nodes);
    return (Array.isArray(result) ? result : [result]).map((t) => [t.shape, t.dataSync()]);
  });
  shapes.push(outputs.map(([shape]) => shape));
  outputs.forEach(([, values], j) => {
    fs.writeFileSync(path.join(job.out_dir, `${i}_${j}.bin`), Buffer.from(values.buffer));
  });
});
console.log(JSON.stringify({ backend: tf.getBackend(), shapes }));
