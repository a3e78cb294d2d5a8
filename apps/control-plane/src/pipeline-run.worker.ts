import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError, type Job } from 'bullmq';
import { PIPELINE_STEP_JOB, PipelineStepPayload, objectKey, type ParsedPayloadOf, type ResultOf, type RunEvent } from '@xyp/contracts';
import { RunOrchestrator, StageRuntime, StageWorker, describeIssues, type StageContext, type StageOutput } from '@xyp/queue';
import { buildRunReport, linksFromStoreKey, renderHtml, renderMarkdown } from '@xyp/run-report';
import { RunPlans } from '@xyp/runs';

/**
 * The control plane's queue. `pipeline.step` jobs (one per stage instance, the parent of its
 * stage job) run when their instance has committed and take the run's next planning step;
 * `pipeline.run` closes a run once everything committed: it writes the run report (JSON,
 * Markdown and self-contained HTML, one section per stage instance) and completes the run.
 */
@Processor('pipeline.run')
export class PipelineRunWorker extends StageWorker<'pipeline.run'> {
  readonly stage = 'pipeline.run' as const;

  constructor(
    runtime: StageRuntime,
    private readonly orchestrator: RunOrchestrator,
    private readonly plans: RunPlans,
  ) {
    super(runtime);
  }

  override async process(job: Job, token?: string): Promise<unknown> {
    if (job.name === PIPELINE_STEP_JOB) {
      const step = PipelineStepPayload.safeParse(job.data);
      if (!step.success) throw new UnrecoverableError(`invalid ${PIPELINE_STEP_JOB} payload in job ${job.id}: ${describeIssues(step.error)}`);
      return this.orchestrator.step(step.data.runId, step.data.after);
    }
    const result = (await super.process(job, token)) as ResultOf<'pipeline.run'>;
    const runId = (job.data as { runId: string }).runId;
    await this.runtime.endRun(runId, 'completed', { reportKey: result.reportKey, reportMarkdownKey: result.markdownKey, reportHtmlKey: result.htmlKey, stage: this.stage });
    await this.plans.deactivate(runId);
    return result;
  }

  protected async execute(payload: ParsedPayloadOf<'pipeline.run'>, context: StageContext): Promise<StageOutput<'pipeline.run'>> {
    const [record, view, events] = await Promise.all([this.runtime.registry.get(payload.runId), this.orchestrator.view(payload.runId), this.allEvents(payload.runId)]);
    if (!record || !view) throw new UnrecoverableError(`run ${payload.runId} has no record or plan to report on`);
    const report = buildRunReport({ record, ...view, events, closedAt: new Date().toISOString() });
    // The report files lie in this stage's objects folder; they link every artifact relative to it.
    const links = linksFromStoreKey(objectKey(payload.runId, this.stage, '0'.repeat(64)));
    const put = (name: string, body: string, type: string) => context.store.putObject(payload.runId, this.stage, name, body, type);
    const json = await put('report.json', JSON.stringify(report, null, 2), 'application/json');
    const markdown = await put('report.md', renderMarkdown(report, links), 'text/markdown');
    const html = await put('report.html', renderHtml(report, links), 'text/html');
    return { result: { reportKey: json.key, markdownKey: markdown.key, htmlKey: html.key, stages: report.stages }, artifacts: [json, markdown, html] };
  }

  /** Every event of the run so far, read a page at a time (the report's time per stage). */
  private async allEvents(runId: string): Promise<RunEvent[]> {
    const events: RunEvent[] = [];
    for (let after = '0-0'; ; ) {
      const page = await this.runtime.events.history(runId, after, 5000);
      events.push(...page);
      if (page.length < 5000) return events;
      after = page[page.length - 1].id;
    }
  }
}
