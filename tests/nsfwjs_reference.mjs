// nsfwjs's own InceptionV3 (its TF.js LAYERS model, loaded as nsfwjs loads it: the bundled
// model.min.js and base64 shards), cut at given layers, on one image: the independent
// reference tests/test_inception.py compares the converter's rebuild with.
// Usage: node nsfwjs_reference.mjs MODEL_DIR INPUT.bin HEIGHT WIDTH OUT_DIR LAYER[,LAYER...]
// INPUT.bin: float32 pixels in [0, 1] (nsfwjs's own range), HWC. Writes OUT_DIR/<layer>.bin.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);
const [modelDir, input, height, width, outDir, layerList] = process.argv.slice(2);
const modelJson = require(path.resolve(modelDir, 'model.min.js'));
const group = modelJson.weightsManifest[0];
const shards = group.paths.map((p) =>
  Buffer.from(require(path.resolve(modelDir, `${p}.min.js`)), 'base64'));
const joined = Buffer.concat(shards);
const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);

await tf.setBackend('cpu');
const model = await tf.loadLayersModel(tf.io.fromMemory({
  modelTopology: modelJson.modelTopology, weightSpecs: group.weights, weightData }));
const names = layerList.split(',');
const cut = tf.model({ inputs: model.inputs, outputs: names.map((n) => model.getLayer(n).output) });
const raw = fs.readFileSync(input);
const x = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4),
  [1, Number(height), Number(width), 3]);
const outputs = [cut.predict(x)].flat();
const shapes = {};
outputs.forEach((t, i) => {
  shapes[names[i]] = t.shape;
  fs.writeFileSync(path.join(outDir, `${names[i]}.bin`), Buffer.from(t.dataSync().buffer));
});
console.log(JSON.stringify({ backend: tf.getBackend(), tfjs: tf.version.tfjs, shapes }));
