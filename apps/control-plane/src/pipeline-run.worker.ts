import { Processor } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import type { ParsedPayloadOf, ResultOf } from '@xyp/contracts';
import { StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';

/**
 * pipeline.run closes a run after its last stage: it gathers every committed stage
 * result into the run report (JSON and Markdown) and marks the run completed.
 */
@Processor('pipeline.run')
export class PipelineRunWorker extends StageWorker<'pipeline.run'> {
  readonly stage = 'pipeline.run' as const;

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  override async process(job: Job, token?: string): Promise<ResultOf<'pipeline.run'>> {
    const result = (await super.process(job, token)) as ResultOf<'pipeline.run'>;
    await this.runtime.endRun((job.data as { runId: string }).runId, 'completed', { reportKey: result.reportKey, stage: this.stage });
    return result;
  }

  protected async execute(payload: ParsedPayloadOf<'pipeline.run'>, context: StageContext): Promise<StageOutput<'pipeline.run'>> {
    const manifests = await context.store.listManifests(payload.runId);
    const stages = Object.fromEntries(
      payload.stages.map((stage) => [stage, manifests.find((m) => m.stage === stage)?.result ?? {}]),
    );
    const report = { runId: payload.runId, stages, artifacts: manifests.flatMap((m) => m.artifacts.map((a) => ({ stage: m.stage, ...a }))) };
    const json = await context.store.putObject(payload.runId, this.stage, 'report.json', JSON.stringify(report, null, 2), 'application/json');
    const markdown = await context.store.putObject(payload.runId, this.stage, 'report.md', renderMarkdown(payload.runId, stages), 'text/markdown');
    return { result: { reportKey: json.key, stages }, artifacts: [json, markdown] };
  }
}

function renderMarkdown(runId: string, stages: Record<string, Record<string, unknown>>): string {
  const lines = [`# Run ${runId}`, ''];
  for (const [stage, result] of Object.entries(stages)) {
    lines.push(`## ${stage}`, '', '| field | value |', '|---|---|');
    for (const [field, value] of Object.entries(result)) {
      lines.push(`| ${field} | ${typeof value === 'object' ? JSON.stringify(value) : String(value)} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
