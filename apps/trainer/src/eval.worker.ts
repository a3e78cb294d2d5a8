import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import type { ArtifactEntry, ParsedPayloadOf, ResultOf } from '@xyp/contracts';
import { instanceId } from '@xyp/contracts';
import { openPolicyScorer } from '@xyp/local-engine';
import { evaluateMcq, mcqReport, perplexityByCategory, perplexityReport, readMcqData, readPerplexityRecords } from '@xyp/policy-eval';
import { StageRuntime, StageWorker, checkpointOf, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { TRAINER_ENGINE_BACKEND, type TrainerEngineBackend } from './engine-options';

/**
 * eval: perplexity per category and multiple-choice accuracy per subject of the checkpoint bound to
 * `model` (`@xyp/policy-eval` on the local engine's scorer). Malformed input rows are counted as
 * rejects and skipped; reports are committed as JSON, Markdown and PNG.
 */
@Processor('eval')
export class EvalWorker extends StageWorker<'eval'> {
  readonly stage = 'eval' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(TRAINER_ENGINE_BACKEND) private readonly backend: TrainerEngineBackend,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'eval'>, context: StageContext): Promise<StageOutput<'eval'>> {
    if (!payload.pplKey && !payload.mcqKey) throw new UnrecoverableError('eval: bind ppl or mcq (or both): there is nothing to evaluate');
    const stage = instanceId(this.stage, context.instance);
    const { checkpoint } = await checkpointOf(context.store, payload.modelManifestKey, 'model');
    const opened = await openPolicyScorer(checkpoint, context.store, { backend: this.backend });
    const objects: Record<string, string> = { ...(payload.pplKey ? { 'ppl.jsonl': payload.pplKey } : {}), ...(payload.mcqKey ? { [payload.mcqName]: payload.mcqKey } : {}) };
    try {
      return await withLocalCopies(context.store, objects, async (paths) => {
        const artifacts: ArtifactEntry[] = [];
        const put = async (name: string, body: string | Uint8Array, type: string) => artifacts.push(await context.store.putObject(payload.runId, stage, name, Buffer.from(body), type));
        const result: ResultOf<'eval'> = { model: checkpoint };
        if (paths['ppl.jsonl']) {
          const read = readPerplexityRecords(paths['ppl.jsonl']);
          const ppl = await perplexityByCategory(read.records, opened.scorer, { signal: context.signal, onProgress: (done, total) => context.progress(done, total, 'documents', 'perplexity') });
          const report = perplexityReport(ppl, { json: { rejects: read.rejects } });
          await put('perplexity.json', report.json, 'application/json');
          await put('perplexity.md', report.markdown, 'text/markdown');
          await put('perplexity.png', report.png, 'image/png');
          result.perplexity = { overall: ppl.overall, categories: ppl.categories, rejects: read.rejects.length };
          context.log(`perplexity ${ppl.overall.ppl.toFixed(2)} over ${ppl.overall.tokens} tokens (${read.rejects.length} rejected lines)`);
        }
        if (paths[payload.mcqName]) {
          const data = readMcqData(paths[payload.mcqName]);
          const mcq = await evaluateMcq(data.questions, opened.scorer, {
            mode: payload.mode,
            maxTokens: payload.maxTokens,
            signal: context.signal,
            onProgress: (done: number, total: number) => context.progress(done, total, 'questions', `mcq ${payload.mode}`),
          });
          const report = mcqReport(mcq, { json: { rejects: data.rejects } });
          await put('mcq.json', report.json, 'application/json');
          await put('mcq.md', report.markdown, 'text/markdown');
          await put('mcq.png', report.png, 'image/png');
          result.mcq = {
            mode: mcq.mode,
            questions: mcq.questions,
            rejects: data.rejects.length,
            macro: mcq.macro,
            micro: mcq.micro,
            subjects: mcq.subjects.map((s) => ({ subject: s.subject, questions: s.questions, correct: s.correct, acc: s.acc, ...(s.accNorm !== undefined ? { accNorm: s.accNorm } : {}), chance: s.chance })),
          };
          context.log(`mcq ${payload.mode}: ${mcq.questions} questions, acc ${(mcq.micro.acc * 100).toFixed(1)}% (${data.rejects.length} rejected rows)`);
        }
        return { result, artifacts };
      });
    } finally {
      opened.dispose();
    }
  }
}
