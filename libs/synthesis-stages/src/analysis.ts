/**
 * Expert-seeded analysis over a stream of topics (`@xyp/synthesis` owns the exemplar draw, the
 * few-shot prompt and the format check). Per topic: `chooseExemplars` (k of its category, seeded
 * by the run's seed and the topic's id) → `analysisMessages` → the generator → `checkAnalysisFormat`
 * against the exemplars shown.
 *
 * A topic is `kept` (item `<topicId>/analysis`: the topic, with its material, as the user turn),
 * `dropped` with the format check's reason (`empty`, `missing-headings`, `too-short`), or `failed`:
 * `no-exemplars` (none of its category), `call-failed`.
 */
import type { LlmGateway } from '@xyp/llm';
import { analysisMessages, chatMessages, checkAnalysisFormat, chooseExemplars, type AnalysisExemplar, type SftItem } from '@xyp/synthesis';
import { attempt, chatRequest, count } from './calls';
import { AnalysisRunConfig, checkModelNames, parseRunConfig, type AnalysisRunConfigInput } from './config';
import { runSynthesis, type ChunkGenerator, type RunOptions, type SynthesisRunResult } from './driver';
import type { InputRecord, InputValues, ValidInput } from './inputs';
import type { SynthesisOutcome } from './outcomes';

export interface AnalysisDeps extends Omit<RunOptions, 'gatewayStats'> {
  gateway: LlmGateway;
  /** The expert exemplars (`readAnalysisExemplars`). */
  exemplars: readonly AnalysisExemplar[];
}

type Topic = ValidInput<InputValues['analysis']>;

/** The user turn of an analysis item: the topic, and its material as the few-shot prompt shows it. */
export function analysisRequest(topic: string, material?: string): string {
  return material ? `${topic}\n\n【材料】\n${material}` : topic;
}

/** The analysis generator for the driver (module comment). */
export function analysisGenerator(configInput: AnalysisRunConfigInput, gateway: LlmGateway, exemplars: readonly AnalysisExemplar[]): ChunkGenerator<InputValues['analysis']> {
  const config = parseRunConfig(AnalysisRunConfig, configInput, 'analysis');
  checkModelNames(config.models, gateway.modelNames, 'analysis');
  const generator = config.models.generator;

  async function topic(input: Topic, signal: AbortSignal, stats: Record<string, number>): Promise<{ outcome: SynthesisOutcome; item?: SftItem }> {
    const base = { id: input.id, category: input.category };
    let shown: AnalysisExemplar[];
    try {
      shown = chooseExemplars(exemplars, { category: input.category, k: config.exemplarsPerTopic, seed: config.seed, key: input.id });
    } catch (error) {
      return { outcome: { ...base, status: 'failed', reason: 'no-exemplars', detail: error instanceof Error ? error.message : String(error) } };
    }
    const { promptVersion, messages } = analysisMessages(shown, input.value.topic, input.value.material);
    const answered = await attempt(() => gateway.chat(generator, chatRequest(messages, config.sampling), { signal }));
    if (!answered.ok) return { outcome: { ...base, status: 'failed', reason: 'call-failed', detail: answered.detail } };
    const analysis = answered.value.content.trim();
    const check = checkAnalysisFormat(analysis, shown, config.format);
    if (!check.ok) {
      count(stats, `format.${check.reason}`);
      const detail =
        check.reason === 'missing-headings' ? `missing heading(s): ${check.missingHeadings.join(', ')}` : check.reason === 'too-short' ? `length ${check.length} < ${check.minLength.toFixed(1)}` : 'the analysis is blank';
      return { outcome: { ...base, status: 'dropped', reason: check.reason ?? 'format', detail } };
    }
    const id = `${input.id}/analysis`;
    const item: SftItem = {
      id,
      messages: chatMessages(analysisRequest(input.value.topic, input.value.material), analysis),
      category: input.category,
      provenance: { generator: 'expert-seeded', models: [answered.value.model], promptVersion, sourceId: input.id, exemplarIds: shown.map((e) => e.id) },
    };
    return { outcome: { ...base, status: 'kept', itemIds: [id] }, item };
  }

  return {
    method: 'expert-seeded',
    config,
    concurrency: config.concurrency,
    chunkSize: config.chunkSize,
    async run(topics, context) {
      const stats: Record<string, number> = {};
      const results = await Promise.all(topics.map((t) => context.slot(() => topic(t, context.signal, stats))));
      return { items: results.flatMap((r) => (r.item ? [r.item] : [])), outcomes: results.map((r) => r.outcome), stats };
    },
  };
}

/** Expert-seeded analysis over `topics` (`readInputs('analysis', path)`), committed to `deps.output`. */
export function runAnalysis(topics: AsyncIterable<InputRecord<InputValues['analysis']>>, config: AnalysisRunConfigInput, deps: AnalysisDeps): Promise<SynthesisRunResult> {
  return runSynthesis(analysisGenerator(config, deps.gateway, deps.exemplars), topics, { ...deps, gatewayStats: () => deps.gateway.stats() });
}
