// The original extension's embedding pipeline, as the anchor of the embedding benchmark: for each image, one
// request at a time, decode the whole file, centre-crop to a square, bilinear resize to 224x224, divide by 255,
// predict. The original used @tensorflow/tfjs-node (decodeImage on libtensorflow), whose install step downloads
// a native libtensorflow and so cannot be installed offline; this runs @tensorflow/tfjs with its WebAssembly
// backend (SIMD; single-threaded under Node) and jpeg-js for decoding, on the same weights.
//
// node embed.mjs --model DIR/model.json --images DIR [--max-images N] [--seconds S] [--json FILE]
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i].startsWith('--')) args[process.argv[i].slice(2)] = process.argv[++i];
}
const modelJson = args.model;
const maxImages = Number(args['max-images'] ?? 8);
const seconds = Number(args.seconds ?? 30);

await tf.setBackend(args.backend ?? 'wasm');
await tf.ready();

const loadStart = performance.now();
const manifest = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
const weightSpecs = manifest.weightsManifest.flatMap(group => group.weights);
const buffers = manifest.weightsManifest.flatMap(group => group.paths.map(p => fs.readFileSync(path.join(path.dirname(modelJson), p))));
const joined = Buffer.concat(buffers);
const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
const full = await tf.loadLayersModel({
  load: async () => ({ modelTopology: manifest.modelTopology, weightSpecs, weightData, format: manifest.format }),
});
// Feature vector: the global average of out_relu, the layer the ONNX model ends with.
const features = tf.model({ inputs: full.inputs, outputs: full.getLayer('out_relu').output });
const loadMs = performance.now() - loadStart;

function embed(bytes) {
  const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 100, maxMemoryUsageInMB: 4096 });
  return tf.tidy(() => {
    const image = tf.tensor3d(decoded.data, [decoded.height, decoded.width, 3], 'int32');
    const side = Math.min(decoded.width, decoded.height);
    const top = Math.floor((decoded.height - side) / 2);
    const left = Math.floor((decoded.width - side) / 2);
    const square = tf.slice(image, [top, left, 0], [side, side, 3]);
    const input = tf.image.resizeBilinear(square, [224, 224]).div(255).expandDims(0);
    const map = features.predict(input);
    return map.mean([1, 2]).dataSync();
  });
}

const files = fs.readdirSync(args.images).filter(f => /\.jpe?g$/i.test(f)).sort().slice(0, maxImages)
  .map(f => path.join(args.images, f));
if (files.length === 0) throw new Error(`no JPEG files in ${args.images}`);
// One warm-up image (compiles kernels, allocates), not counted.
embed(fs.readFileSync(files[0]));
let done = 0;
const times = [];
const start = performance.now();
for (const file of files) {
  const t = performance.now();
  const vector = embed(fs.readFileSync(file));
  if (vector.length !== 1280) throw new Error(`unexpected vector length ${vector.length}`);
  times.push(performance.now() - t);
  done++;
  if ((performance.now() - start) / 1000 > seconds) break;
}
const elapsed = (performance.now() - start) / 1000;
times.sort((a, b) => a - b);
const result = {
  engine: `tfjs ${tf.version.tfjs} ${tf.getBackend()} backend + jpeg-js`,
  images: done,
  imagesPerSecond: Number((done / elapsed).toFixed(2)),
  medianMsPerImage: Number(times[Math.floor(times.length / 2)].toFixed(1)),
  modelLoadMs: Number(loadMs.toFixed(0)),
  peakRssMiB: Number((process.resourceUsage().maxRSS / 1024).toFixed(1)),
};
const text = JSON.stringify(result, null, 2);
if (args.json) fs.writeFileSync(args.json, text);
console.log(text);
