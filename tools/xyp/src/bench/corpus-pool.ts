import { fork, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { ShardRunner } from '@xyp/bucketing';
import type { ShardJob, ShardReport } from '@xyp/packing';
import type { WorkerReply, WorkerRequest } from './corpus-worker';

const REGISTER = resolve(__dirname, '../../../runtime/register.js');
const ENTRY = join(__dirname, 'corpus-worker.ts');

interface Worker {
  child: ChildProcess;
  busy: boolean;
}

/** A fixed set of child processes that pack shard jobs; `runShard` plugs into `bucketCorpus`. */
export interface WorkerPool {
  readonly size: number;
  runShard: ShardRunner;
  /** Peak RSS (MB) each worker reported with its last shard. */
  peakRssMb(): number[];
  close(): Promise<void>;
}

export interface WorkerPoolOptions {
  workers: number;
  tokenizer: string;
  /** Directory of the scratch store the shards write to (shared with the coordinator). */
  scratchDir: string;
}

function request(child: ChildProcess, message: WorkerRequest): void {
  child.send(message);
}

/**
 * Starts `workers` child processes and waits until each has loaded the tokenizer, so that
 * timings taken after this call do not include start-up. Shard jobs go to idle workers; a
 * worker that dies fails the job it was running.
 */
export async function startWorkerPool(options: WorkerPoolOptions): Promise<WorkerPool> {
  const workers: Worker[] = [];
  const peaks: number[] = [];
  const waiting: ((worker: Worker) => void)[] = [];
  const pending = new Map<number, { resolve: (report: ShardReport) => void; reject: (error: Error) => void; worker: Worker }>();
  let nextId = 0;

  const release = (worker: Worker) => {
    const next = waiting.shift();
    if (next !== undefined) next(worker);
    else worker.busy = false;
  };

  await Promise.all(
    Array.from({ length: options.workers }, (_, index) => {
      const child = fork(ENTRY, [], { execArgv: ['-r', REGISTER], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const worker: Worker = { child, busy: false };
      workers.push(worker);
      peaks.push(0);
      return new Promise<void>((resolveReady, rejectReady) => {
        child.on('message', (reply: WorkerReply) => {
          if (reply.type === 'ready') return resolveReady();
          if (reply.type === 'error' && reply.id === null) return rejectReady(new Error(`worker ${index}: ${reply.message}`));
          if (reply.id === null) return;
          const job = pending.get(reply.id);
          if (job === undefined) return;
          pending.delete(reply.id);
          if (reply.type === 'done') {
            peaks[index] = Math.max(peaks[index], reply.maxRssMb);
            job.resolve(reply.report);
          } else {
            job.reject(new Error(reply.message));
          }
          release(worker);
        });
        child.on('exit', (code) => {
          rejectReady(new Error(`worker ${index} exited with code ${code} before it was ready`));
          for (const [id, job] of pending) {
            if (job.worker !== worker) continue;
            pending.delete(id);
            job.reject(new Error(`worker ${index} exited with code ${code} while packing a shard`));
          }
        });
        request(child, { type: 'init', tokenizer: options.tokenizer, scratchDir: options.scratchDir });
      });
    }),
  );

  const acquire = (): Promise<Worker> => {
    const idle = workers.find((worker) => !worker.busy && worker.child.connected);
    if (idle !== undefined) {
      idle.busy = true;
      return Promise.resolve(idle);
    }
    return new Promise((resolveWorker) => waiting.push(resolveWorker));
  };

  return {
    size: workers.length,
    async runShard(job: ShardJob): Promise<ShardReport> {
      const worker = await acquire();
      const id = nextId++;
      return new Promise<ShardReport>((resolveJob, rejectJob) => {
        pending.set(id, { resolve: resolveJob, reject: rejectJob, worker });
        request(worker.child, { type: 'shard', id, job });
      });
    },
    peakRssMb: () => [...peaks],
    async close() {
      await Promise.all(
        workers.map(
          (worker) =>
            new Promise<void>((done) => {
              if (worker.child.exitCode !== null || !worker.child.connected) return done();
              worker.child.once('exit', () => done());
              worker.child.disconnect();
            }),
        ),
      );
    },
  };
}
