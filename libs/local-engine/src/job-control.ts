/**
 * Cancel, shutdown, progress and resume of a `LocalEngine` job (`JobControl`), and the resume
 * checkpoints a long job writes so that another worker continues it from its last step.
 */
import type { JobKind } from '@xyp/contracts';
import type { CheckpointObjectStore, CheckpointSink, TrainProgress } from '@xyp/engine';

/** A job's progress: the training loop's report (step k/N, loss, tokens/s, ETA, a line) and the job. */
export type JobProgress = TrainProgress & { job: JobKind };

/**
 * Where a job resumes: the step it had reached, the objects of its resume checkpoint (weights,
 * optimiser moments, generator state) and the job state beyond the trainer. Small JSON, kept on the
 * BullMQ job (`job.updateData`) by whoever runs the job.
 */
export interface ResumeMarker {
  version: 1;
  kind: JobKind;
  runId: string;
  stage: string;
  /** Optimiser steps done when the checkpoint was written. */
  step: number;
  /** Steps of the whole job (PPO: nominal, rounds × epochs × minibatches). */
  totalSteps: number;
  /** PPO: rounds done. */
  round?: number;
  /** Checkpoint file name → object key in the store (uncommitted objects of the job's stage). */
  files: Record<string, string>;
  /** What the job needs besides the trainer: first loss, SFT log so far, PPO round results, seconds. */
  state: Record<string, unknown>;
  savedAt: string;
}

/** How a caller steers a `LocalEngine` job. Every field is optional. */
export interface JobControl {
  /** Cancel: the job stops within one step and rejects with the signal's reason; nothing is committed. */
  signal?: AbortSignal;
  /**
   * Shut down: the job finishes the step in progress, writes a resume checkpoint, reports its marker
   * (`onCheckpoint`) and rejects with `HandedBackError` (of `@xyp/offload`) carrying the marker.
   */
  drain?: AbortSignal;
  /** After every step (or PPO update), awaited. */
  onProgress?: (progress: JobProgress) => void | Promise<void>;
  /** Continue from this marker (an earlier attempt's) instead of starting over. */
  resume?: ResumeMarker;
  /** Stores a marker durably (e.g. `job.updateData`); awaited before the job goes on. */
  onCheckpoint?: (marker: ResumeMarker) => Promise<void>;
  /** Write a resume checkpoint every this many steps (PPO: at the first round end past it). */
  checkpointEverySteps?: number;
  /** ... or when this many seconds passed since the last one. */
  checkpointEverySeconds?: number;
}

/** The folder of resume checkpoint files among a stage's objects. */
export const RESUME_PREFIX = 'resume/';

/**
 * A `CheckpointSink` for resume checkpoints: `put` stores each file as an object of the job's stage
 * (named `resume/<file>`, content-addressed, never in the manifest) and records its key; `get` reads
 * the files of a marker back by key.
 */
export class ResumeSink implements CheckpointSink {
  readonly files: Record<string, string>;

  constructor(
    private readonly store: CheckpointObjectStore,
    private readonly runId: string,
    private readonly stage: string,
    files: Record<string, string> = {},
  ) {
    this.files = { ...files };
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const entry = await this.store.putObject(this.runId, this.stage, `${RESUME_PREFIX}${name}`, body, name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    this.files[name] = entry.key;
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const key = this.files[name];
    if (!key) return undefined;
    return new Uint8Array(await this.store.getObject(key));
  }
}

/** Checks that a marker belongs to this job (kind, run, stage) before resuming from it. */
export function checkMarker(marker: ResumeMarker, kind: JobKind, runId: string, stage: string): ResumeMarker {
  if (marker.version !== 1 || marker.kind !== kind || marker.runId !== runId || marker.stage !== stage) {
    throw new Error(`resume marker of ${marker.kind} ${marker.runId}/${marker.stage} does not belong to this ${kind} job ${runId}/${stage}`);
  }
  return marker;
}
