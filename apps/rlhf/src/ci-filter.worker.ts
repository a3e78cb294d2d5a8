import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import { instanceId, type ArtifactEntry, type ParsedPayloadOf } from '@xyp/contracts';
import { LocalEngine, openTextReward } from '@xyp/local-engine';
import { StageRuntime, StageWorker, checkpointOf, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { ciFilterCharts, ciFilterMarkdown, promptsJsonl, readRlhfPrompts, runCiFilter } from '@xyp/rlhf-stages';
import { RLHF_ENGINE_BACKEND, isInputError, type RlhfEngineBackend } from './engine-options';

/**
 * rlhf.ci-filter: the confidence-interval filter of the finance prompts (`runCiFilter` of
 * `@xyp/rlhf-stages`): n samples of the SFT policy per prompt, UFRM scores, `ciFilter` of
 * `@xyp/rlhf`. Every prompt is kept or dropped by a named rule; the kept ones and the first round's
 * ratios and KL are committed for the PEI loop.
 */
@Processor('rlhf.ci-filter')
export class RlhfCiFilterWorker extends StageWorker<'rlhf.ci-filter'> {
  readonly stage = 'rlhf.ci-filter' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(RLHF_ENGINE_BACKEND) private readonly backend: RlhfEngineBackend,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'rlhf.ci-filter'>, context: StageContext): Promise<StageOutput<'rlhf.ci-filter'>> {
    const stage = instanceId(this.stage, context.instance);
    const policy = (await checkpointOf(context.store, payload.policyManifestKey, 'policy')).checkpoint;
    const rewardModel = (await checkpointOf(context.store, payload.rewardManifestKey, 'reward')).checkpoint;
    return withLocalCopies(context.store, { 'prompts.jsonl': payload.promptsKey }, async (paths) => {
      const read = await readRlhfPrompts(paths['prompts.jsonl'], { subdomainPrefix: payload.subdomainPrefix });
      if (read.prompts.length === 0) {
        throw new UnrecoverableError(`rlhf.ci-filter: prompts: no prompt${payload.subdomainPrefix ? ` with a subdomain starting "${payload.subdomainPrefix}"` : ''} (${read.lines} lines, ${read.rejects.length} rejected, ${read.skipped} of other subdomains)`);
      }
      const engine = new LocalEngine({ store: context.store, backend: this.backend });
      const reward = await openTextReward(rewardModel, context.store, this.backend);
      try {
        const out = await runCiFilter(engine, {
          policy,
          reward: reward.reward,
          prompts: read.prompts,
          samples: payload.samples,
          maxTokens: payload.maxTokens,
          temperature: payload.temperature,
          seed: payload.seed,
          filter: { minStd: payload.minStd, upper: payload.upper, lower: payload.lower, keep: { fraction: payload.keepFraction }, seed: payload.seed },
          signal: context.signal,
          onProgress: (done, total, what) => context.progress(done, total, what, 'sampling and scoring'),
        }).catch((error: unknown) => {
          if (isInputError(error)) throw new UnrecoverableError(error.message);
          throw error;
        });
        const artifacts: ArtifactEntry[] = [];
        const put = async (name: string, body: string | Uint8Array, type: string) => artifacts.push(await context.store.putObject(payload.runId, stage, name, Buffer.from(body), type));
        const ratios = { ratios: out.ratios, kl: payload.klStart };
        await put('prompts.jsonl', promptsJsonl(out.kept), 'application/x-ndjson');
        await put('ratios.json', `${JSON.stringify(ratios, null, 2)}\n`, 'application/json');
        await put('history.json', `${JSON.stringify([{ round: 0, ratios: out.ratios, kl: payload.klStart }], null, 2)}\n`, 'application/json');
        await put('ci-filter.json', `${JSON.stringify({ ...out.result, scored: out.scored.map(({ responses: _r, ...s }) => s) }, null, 2)}\n`, 'application/json');
        await put('ci-filter.md', ciFilterMarkdown(out.result), 'text/markdown');
        await put('rejects.jsonl', read.rejects.map((r) => JSON.stringify(r)).join('\n') + (read.rejects.length ? '\n' : ''), 'application/x-ndjson');
        for (const [name, png] of Object.entries(ciFilterCharts(out.scored))) await put(name, png, 'image/png');
        const droppedByRule: Record<string, number> = {};
        for (const d of out.result.dropped) droppedByRule[d.rule] = (droppedByRule[d.rule] ?? 0) + 1;
        context.log(`kept ${out.kept.length} of ${read.prompts.length} prompts`);
        return {
          result: {
            lines: read.lines,
            prompts: read.prompts.length,
            rejected: read.rejects.length,
            kept: out.kept.length,
            droppedByRule,
            bySubdomain: out.result.bySubdomain as unknown as Record<string, Record<string, number>>,
            ratios: out.ratios,
            kl: payload.klStart,
            thresholds: out.result.thresholds as unknown as Record<string, unknown>,
          },
          artifacts,
        };
      } finally {
        reward.dispose();
      }
    });
  }
}
