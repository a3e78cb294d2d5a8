import * as tf from '@tensorflow/tfjs-core';
import { initBackend, initParams, Trainer, packDocuments, trainCpt, generate, ByteTokenizer } from '@xyp/engine';
(async () => {
  console.log(await initBackend({ backend: (process.argv[2] as 'wasm'|'cpu') ?? 'auto' }));
  const tok = new ByteTokenizer();
  const docs = Array.from({ length: 40 }, (_, i) => tok.encode(`abcabc ${i % 3} the quick brown fox `.repeat(3)));
  const rows = packDocuments(docs, 32, tok.eos);
  const model = initParams({ vocabSize: tok.vocabSize, contextLength: 64, layers: 2, width: 32, heads: 2 }, 1);
  const trainer = new Trainer(model, { lr: 3e-3, warmupSteps: 5, totalSteps: 60 }, 7);
  const t = performance.now();
  trainCpt(trainer, rows, { steps: 60, batchSize: 8, onStep: (r) => { if (r.step % 10 === 0) console.log(r); } });
  console.log('ms/step', (performance.now() - t) / 60, 'tensors', tf.memory().numTensors);
  const s = generate(model, [tok.encode('the qu'), tok.encode('abc')], { n: 2, maxTokens: 20, temperature: 0.5, seed: 3 });
  console.log(s.map((x) => JSON.stringify(tok.decode(x.tokens))), tf.memory().numTensors);
})();
