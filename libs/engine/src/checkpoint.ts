/**
 * Checkpoints: `model.safetensors` (weights), `config.json` (model config), and for a trainer
 * `optimizer.safetensors` (AdamW m and v) and `trainer.json` (step, optimiser config, generator
 * state). They are written through a sink, so a directory, memory or the project's ArtifactStore can
 * hold them. A resumed trainer's next step equals an uninterrupted run's bit for bit.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { ModelConfig, modelFromWeights, type Model } from './model';
import { OptimConfig } from './optim';
import { Trainer } from './train';

export interface CheckpointSink {
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** The bytes stored under `name`, or undefined. */
  get(name: string): Promise<Uint8Array | undefined>;
}

export class MemorySink implements CheckpointSink {
  readonly files = new Map<string, Uint8Array>();
  async put(name: string, bytes: Uint8Array): Promise<void> {
    this.files.set(name, bytes.slice());
  }
  async get(name: string): Promise<Uint8Array | undefined> {
    return this.files.get(name);
  }
}

export class DirectorySink implements CheckpointSink {
  constructor(readonly dir: string) {}
  async put(name: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, name), bytes);
  }
  async get(name: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(join(this.dir, name)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }
}

/** safetensors: u64 little-endian header length, JSON header, then the raw little-endian F32 data. */
export function encodeSafetensors(tensors: Record<string, tf.Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name];
    const data = t.dataSync() as Float32Array;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
    chunks.push(data);
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const c of chunks) {
    out.set(new Uint8Array(c.buffer, c.byteOffset, c.byteLength), at);
    at += c.byteLength;
  }
  return out;
}

const SafetensorsEntry = z.object({ dtype: z.literal('F32'), shape: z.array(z.number().int().nonnegative()), data_offsets: z.tuple([z.number(), z.number()]) });

export function decodeSafetensors(bytes: Uint8Array): { tensors: Record<string, tf.Tensor>; metadata: Record<string, string> } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8')) as Record<string, unknown>;
  const base = 8 + headerLength;
  const tensors: Record<string, tf.Tensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const entry = SafetensorsEntry.parse(raw);
    const [start, end] = entry.data_offsets;
    const data = new Float32Array(bytes.slice(base + start, base + end).buffer);
    tensors[name] = tf.tensor(data, entry.shape, 'float32');
  }
  return { tensors, metadata };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const TrainerState = z.object({ step: z.number().int().nonnegative(), rngState: z.number().int(), optim: OptimConfig });

export async function saveModel(sink: CheckpointSink, model: Model): Promise<void> {
  await sink.put('model.safetensors', encodeSafetensors(model.params, { format: 'xyp-engine' }));
  await sink.put('config.json', encoder.encode(JSON.stringify(model.config, null, 2)));
}

export async function loadModel(sink: CheckpointSink, trainable = true): Promise<Model> {
  const configBytes = await sink.get('config.json');
  const weightBytes = await sink.get('model.safetensors');
  if (!configBytes || !weightBytes) throw new Error('not a checkpoint: config.json or model.safetensors is missing');
  const config = ModelConfig.parse(JSON.parse(decoder.decode(configBytes)));
  return modelFromWeights(config, decodeSafetensors(weightBytes).tensors, trainable);
}

/** Weights, config, optimiser moments and the trainer's step and generator state. */
export async function saveTrainer(sink: CheckpointSink, trainer: Trainer): Promise<void> {
  await saveModel(sink, trainer.model);
  const moments: Record<string, tf.Tensor> = {};
  for (const [name, m] of Object.entries(trainer.optimizer.m)) moments[`${name}.m`] = m;
  for (const [name, v] of Object.entries(trainer.optimizer.v)) moments[`${name}.v`] = v;
  await sink.put('optimizer.safetensors', encodeSafetensors(moments));
  const state = { step: trainer.step, rngState: trainer.rng.state, optim: trainer.optimizer.config };
  await sink.put('trainer.json', encoder.encode(JSON.stringify(state, null, 2)));
}

export async function loadTrainer(sink: CheckpointSink): Promise<Trainer> {
  const model = await loadModel(sink, true);
  const stateBytes = await sink.get('trainer.json');
  const momentBytes = await sink.get('optimizer.safetensors');
  if (!stateBytes || !momentBytes) throw new Error('not a trainer checkpoint: trainer.json or optimizer.safetensors is missing');
  const state = TrainerState.parse(JSON.parse(decoder.decode(stateBytes)));
  const trainer = new Trainer(model, state.optim, 0);
  trainer.rng.state = state.rngState;
  trainer.optimizer.step = state.step;
  const { tensors } = decodeSafetensors(momentBytes);
  for (const name of Object.keys(trainer.optimizer.m)) {
    const m = tensors[`${name}.m`];
    const v = tensors[`${name}.v`];
    if (!m || !v) throw new Error(`optimizer state lacks ${name}`);
    trainer.optimizer.m[name].assign(m);
    trainer.optimizer.v[name].assign(v);
    m.dispose();
    v.dispose();
  }
  return trainer;
}
