import { createInterface } from 'node:readline';
import { Processor } from '@nestjs/bullmq';
import { CorpusDocument, type ParsedPayloadOf, type ResultOf } from '@xyp/contracts';
import { StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';

/**
 * corpus.inspect: reads the run's input JSONL from the store, checks every line
 * against the document schema and counts documents and characters per category.
 */
@Processor('corpus.inspect')
export class CorpusInspectWorker extends StageWorker<'corpus.inspect'> {
  readonly stage = 'corpus.inspect' as const;

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'corpus.inspect'>, context: StageContext): Promise<StageOutput<'corpus.inspect'>> {
    const size = (await context.store.statObject(payload.inputKey))?.size;
    if (size === undefined) throw new Error(`input ${payload.inputKey} not found in the artifact store`);
    const input = await context.store.getObjectStream(payload.inputKey);
    let bytes = 0;
    input.on('data', (chunk: Buffer) => (bytes += chunk.length));
    const result: ResultOf<'corpus.inspect'> = { docs: 0, rejected: 0, chars: 0, categories: {}, rejectReasons: {} };
    const reject = (reason: string) => {
      result.rejected++;
      result.rejectReasons[reason] = (result.rejectReasons[reason] ?? 0) + 1;
    };
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      if (!line.trim()) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        reject('malformed-json');
        continue;
      }
      const parsed = CorpusDocument.safeParse(value);
      if (!parsed.success) {
        reject(`invalid-${String(parsed.error.issues[0].path[0] ?? 'document')}`);
        continue;
      }
      const chars = parsed.data.text.length;
      const category = (result.categories[parsed.data.category] ??= { docs: 0, chars: 0 });
      category.docs++;
      category.chars += chars;
      result.docs++;
      result.chars += chars;
      if (result.docs % 1000 === 0) await context.progress(bytes, size, 'bytes');
    }
    await context.progress(size, size, 'bytes');
    const summary = await context.store.putObject(
      payload.runId,
      this.stage,
      'summary.json',
      Buffer.from(JSON.stringify(result, null, 2)),
      'application/json',
    );
    return { result, artifacts: [summary] };
  }
}
