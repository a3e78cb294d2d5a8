/**
 * A worker process for the offloaded-training test: one BullMQ worker whose processor trains in a
 * thread, shut down on SIGTERM the way a service is (`worker.close()`, as `WorkerRegistration` does
 * on Nest's shutdown hook), then exit 0. Prints `progress <step>` lines and `closed` on stdout.
 * Settings come as one JSON argument.
 */
import { Worker } from 'bullmq';
import { createArtifactStore, type ArtifactStoreOptions } from '@xyp/storage';
import { trainingJobProcessor } from '../training-processor';

const settings = JSON.parse(process.argv[2] ?? '{}') as { redis: { host: string; port: number; db?: number }; prefix: string; queue: string; store: ArtifactStoreOptions; lockMs: number };
const processor = trainingJobProcessor({
  store: createArtifactStore(settings.store),
  storeOptions: settings.store,
  backend: { threads: 1 },
  worker: () => worker,
  checkpointEverySteps: 50,
  progressIntervalMs: 500,
  onProgress: (_job, p) => void process.stdout.write(`progress ${p.done}\n`),
});
const worker: Worker = new Worker(settings.queue, (job, token, signal) => processor(job, token, signal), {
  connection: { ...settings.redis, maxRetriesPerRequest: null },
  prefix: settings.prefix,
  lockDuration: settings.lockMs,
  stalledInterval: settings.lockMs,
});
process.once('SIGTERM', () => {
  void worker.close().then(() => {
    process.stdout.write('closed\n');
    process.exit(0);
  });
});
process.stdout.write('ready\n');
