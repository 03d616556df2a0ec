#!/usr/bin/env node
/*
 * face_reference.js: the JavaScript reference for OpenABIS's face pipeline
 * (src/nn, src/modality/face): @vladmandic/face-api's own code on
 * TensorFlow.js's wasm backend, photos decoded by jpeg-js (JPEG) or read here
 * (binary PGM), exactly as an application of the package would run it.
 *
 *   node face_reference.js fixtures OUT.json
 *       runs both detectors, the 68-landmark network and the descriptor
 *       network on the photos listed in photos.txt (paths under the shared
 *       data folder, $ABIS_DATA_ROOT or /work/shared/data) and writes what
 *       tests/test_face_parity.c compares the C pipeline with: every face's
 *       box and score, its landmarks, the descriptor crop and the descriptor.
 *       No pixels are written.
 *   node face_reference.js bench [--detector ssd|tiny] [--seconds S] [--threads N] PHOTO...
 *       times decoding, detection, landmarks and the descriptor per photo
 *       (bench/bench_face.c runs it beside the C pipeline) and prints one
 *       JSON object.
 *
 * Install first: npm ci (in this folder; node_modules is git-ignored).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const jpeg = require('jpeg-js');

const MODEL_DIR = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
const DATA_ROOT = process.env.ABIS_DATA_ROOT || '/work/shared/data';

/* Decode a photo into an int32 RGB tensor, as face-api's examples do. */
function decodePhoto(file) {
  const buf = fs.readFileSync(file);
  let width;
  let height;
  let rgb;
  if (buf[0] === 0x50 && buf[1] === 0x35) { /* P5 PGM: grey repeated into R, G, B */
    const header = buf.toString('latin1', 0, 64).match(/^P5\s+(?:#.*\s+)*(\d+)\s+(\d+)\s+(\d+)\s/);
    if (!header) throw new Error(`${file}: bad PGM header`);
    [width, height] = [Number(header[1]), Number(header[2])];
    const maxval = Number(header[3]);
    const off = header[0].length;
    rgb = new Int32Array(width * height * 3);
    for (let i = 0; i < width * height; i++) {
      const v = Math.floor((buf[off + i] * 255 + Math.floor(maxval / 2)) / maxval);
      rgb[3 * i] = v;
      rgb[3 * i + 1] = v;
      rgb[3 * i + 2] = v;
    }
  } else {
    const raw = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true });
    ({ width, height } = raw);
    rgb = new Int32Array(width * height * 3);
    for (let i = 0; i < width * height; i++) {
      rgb[3 * i] = raw.data[4 * i];
      rgb[3 * i + 1] = raw.data[4 * i + 1];
      rgb[3 * i + 2] = raw.data[4 * i + 2];
    }
  }
  return { width, height, tensor: faceapi.tf.tensor3d(rgb, [height, width, 3], 'int32') };
}

async function init(threads) {
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  if (threads) wasm.setThreadsCount(threads);
  await tf.setBackend('wasm');
  await tf.ready();
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(MODEL_DIR);
  await faceapi.nets.tinyFaceDetector.loadFromDisk(MODEL_DIR);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(MODEL_DIR);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(MODEL_DIR);
}

function detectorOptions(name) {
  return name === 'tiny'
    ? new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 })
    : new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 100 });
}

const r7 = (v) => Number(v.toPrecision(7));
const rect = (b) => [b.x, b.y, b.width, b.height].map(r7);

async function fixtures(out) {
  const list = fs.readFileSync(path.join(__dirname, 'photos.txt'), 'utf8')
    .split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  await init(1);
  const photos = [];
  for (const rel of list) {
    const photo = decodePhoto(path.join(DATA_ROOT, rel));
    const entry = { photo: rel, width: photo.width, height: photo.height };
    for (const det of ['ssd', 'tiny']) {
      // eslint-disable-next-line no-await-in-loop
      const faces = await faceapi.detectAllFaces(photo.tensor, detectorOptions(det))
        .withFaceLandmarks().withFaceDescriptors();
      entry[det] = faces.map((f) => ({
        score: r7(f.detection.score),
        box: rect(f.detection.box),
        /* the region the landmark network saw, and the descriptor crop */
        landmark_crop: rect(f.detection.box.clipAtImageBorders(photo.width, photo.height)),
        landmarks: f.landmarks.positions.map((p) => [r7(p.x), r7(p.y)]),
        descriptor_crop: rect(f.landmarks.align(null, { useDlibAlignment: true })
          .clipAtImageBorders(photo.width, photo.height)),
        descriptor: Array.from(f.descriptor).map(r7),
      }));
    }
    photo.tensor.dispose();
    photos.push(entry);
    process.stderr.write(`${rel}: ssd ${entry.ssd.length} tiny ${entry.tiny.length} face(s)\n`);
  }
  const doc = {
    generator: 'tests/reference/face_reference.js',
    versions: { 'face-api': faceapi.version, tfjs: tf.version.tfjs, backend: tf.getBackend(), node: process.version },
    options: { ssd: { minConfidence: 0.5, maxResults: 100 }, tiny: { inputSize: 416, scoreThreshold: 0.5 } },
    photos,
  };
  fs.writeFileSync(out, `${JSON.stringify(doc)}\n`);
}

async function bench(args) {
  let detector = 'ssd';
  let seconds = 5;
  let threads = 1;
  const files = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--detector') detector = args[++i];
    else if (args[i] === '--seconds') seconds = Number(args[++i]);
    else if (args[i] === '--threads') threads = Number(args[++i]);
    else files.push(args[i]);
  }
  await init(threads);
  const opts = detectorOptions(detector);
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  const sum = { decode: 0, detect: 0, landmarks: 0, descriptor: 0, pipeline: 0 };
  let n = 0;
  /* one warm-up pass: the first run of each network compiles its kernels */
  for (const f of files) {
    const p = decodePhoto(f);
    // eslint-disable-next-line no-await-in-loop
    await faceapi.detectAllFaces(p.tensor, opts).withFaceLandmarks().withFaceDescriptors();
    p.tensor.dispose();
  }
  const start = now();
  const cpu0 = process.cpuUsage();
  while (now() - start < seconds * 1000 || n < files.length) {
    const f = files[n % files.length];
    const t0 = now();
    const p = decodePhoto(f);
    const t1 = now();
    // eslint-disable-next-line no-await-in-loop
    const dets = await faceapi.detectAllFaces(p.tensor, opts);
    const t2 = now();
    let t3 = t2;
    let t4 = t2;
    if (dets.length) {
      const best = dets.reduce((a, b) => (b.score > a.score ? b : a));
      const [crop] = await faceapi.extractFaceTensors(p.tensor, [best]); // eslint-disable-line no-await-in-loop
      const lm = await faceapi.nets.faceLandmark68Net.detectLandmarks(crop); // eslint-disable-line no-await-in-loop
      crop.dispose();
      t3 = now();
      const shifted = lm.shiftBy(best.box.x, best.box.y);
      const box = shifted.align(null, { useDlibAlignment: true });
      const [face] = await faceapi.extractFaceTensors(p.tensor, [box]); // eslint-disable-line no-await-in-loop
      await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(face); // eslint-disable-line no-await-in-loop
      face.dispose();
      t4 = now();
    }
    p.tensor.dispose();
    sum.decode += t1 - t0;
    sum.detect += t2 - t1;
    sum.landmarks += t3 - t2;
    sum.descriptor += t4 - t3;
    sum.pipeline += t4 - t0;
    n++;
  }
  const ms = {};
  for (const k of Object.keys(sum)) ms[`${k}_ms`] = Number((sum[k] / n).toFixed(3));
  /* CPU time per photo: on a shared machine, the work without the waiting */
  const cpu = process.cpuUsage(cpu0);
  ms.cpu_ms = Number(((cpu.user + cpu.system) / 1000 / n).toFixed(3));
  process.stdout.write(`${JSON.stringify({ detector, threads, photos: n, ...ms, photos_per_s: Number((1000 * n / sum.pipeline).toFixed(3)), versions: { 'face-api': faceapi.version, tfjs: tf.version.tfjs } })}\n`);
}

(async () => {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'fixtures' && rest.length === 1) await fixtures(rest[0]);
  else if (mode === 'bench' && rest.length) await bench(rest);
  else {
    process.stderr.write('usage: face_reference.js fixtures OUT.json | bench [--detector ssd|tiny] [--seconds S] [--threads N] PHOTO...\n');
    process.exit(2);
  }
})().catch((e) => {
  process.stderr.write(`face_reference.js: ${e.stack || e}\n`);
  process.exit(1);
});
