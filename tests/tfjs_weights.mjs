// The weights a browser holds, as tfjs itself loads them: the committed graph model (model.json
// and its shards) through tf.loadGraphModel, every float tensor written out. The independent
// reference the native backend's weights are checked against (tests/weights_reference.py).
// Usage: node tfjs_weights.mjs MODEL_DIR OUT_DIR  ->  OUT_DIR/index.json {name: shape} and
// OUT_DIR/<n>.bin (float32, in index order).
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

const [modelDir, outDir] = process.argv.slice(2);
const modelJson = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
const shards = modelJson.weightsManifest.flatMap((group) =>
  group.paths.map((p) => fs.readFileSync(path.join(modelDir, p))));
const joined = Buffer.concat(shards);
const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);

await tf.setBackend('cpu');
const model = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: modelJson.modelTopology,
  weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
  weightData,
}));
const index = [];
for (const [name, tensors] of Object.entries(model.weights)) {
  for (const tensor of tensors) {
    if (tensor.dtype !== 'float32') continue;
    const values = await tensor.data();
    fs.writeFileSync(path.join(outDir, `${index.length}.bin`), Buffer.from(values.buffer));
    index.push({ name, shape: tensor.shape });
  }
}
fs.writeFileSync(path.join(outDir, 'index.json'), JSON.stringify(index));
