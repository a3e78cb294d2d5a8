/**
 * Child-process entry of the bucketing worker pool (`corpus-pool.ts`): loads the tokenizer once,
 * then packs the shard jobs it is sent into the scratch directory and reports back over IPC.
 * Started with the SWC register hook (`node -r tools/runtime/register.js`).
 */
import { DirectoryStore, packShard } from '@xyp/bucketing';
import { ShardJob, type ShardReport } from '@xyp/packing';
import { loadTokenizer, type TextTokenizer } from '@xyp/tokenizer';
import { peakRssMb } from './corpus-rss';

export type WorkerRequest = { type: 'init'; tokenizer: string; scratchDir: string } | { type: 'shard'; id: number; job: ShardJob };
export type WorkerReply =
  | { type: 'ready'; backend: string }
  | { type: 'done'; id: number; report: ShardReport; maxRssMb: number }
  | { type: 'error'; id: number | null; message: string };

function send(reply: WorkerReply): void {
  process.send?.(reply);
}


async function main(): Promise<void> {
  let tokenizer: TextTokenizer | null = null;
  let scratch: DirectoryStore | null = null;
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: WorkerRequest) => {
    void (async () => {
      if (message.type === 'init') {
        try {
          tokenizer = await loadTokenizer(message.tokenizer);
          scratch = new DirectoryStore(message.scratchDir);
          send({ type: 'ready', backend: tokenizer.backend });
        } catch (error) {
          send({ type: 'error', id: null, message: error instanceof Error ? error.message : String(error) });
        }
        return;
      }
      try {
        if (tokenizer === null || scratch === null) throw new Error('worker not initialised');
        const report = await packShard({ job: ShardJob.parse(message.job), encoder: tokenizer, scratch });
        send({ type: 'done', id: message.id, report, maxRssMb: peakRssMb() });
      } catch (error) {
        send({ type: 'error', id: message.id, message: error instanceof Error ? error.message : String(error) });
      }
    })();
  });
}

if (require.main === module) void main();
