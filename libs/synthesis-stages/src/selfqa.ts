/**
 * SelfQA over a stream of documents (`@xyp/synthesis` owns the prompts, parsing and filters):
 *
 *   1. instructions: `selfQaInstructionMessages`, with one line appended that asks for the list as
 *      JSON (`SELFQA_JSON_OUTPUT`, versioned here), through `chatStructured` with the schema
 *      `{instructions: string[]}` (a bare array is accepted too; with `jsonSchema` the schema is
 *      also sent as `response_format`) and `repairs` re-asks; the items
 *      are cleaned by `parseInstructions` and cut to `instructionsPerDocument`;
 *   2. answers: `selfQaAnswerMessages` per instruction, all of a document's at once, `parseAnswer`;
 *   3. `filterSelfQa` over the document's pairs (duplicates within the document; across documents
 *      and generators the merge stage deduplicates).
 *
 * A document is `kept` with its items (`<docId>/qa-<k>`, k the instruction's place in the list),
 * `dropped` when no pair survived (reason: the most frequent pair drop, the detail counting them
 * all), or `failed`: `unparsed-instructions` (still no valid JSON after the repairs),
 * `no-instructions`, `call-failed` (the endpoint refused the request for good).
 */
import type { LlmGateway } from '@xyp/llm';
import {
  SELFQA_ANSWER,
  SELFQA_INSTRUCTIONS,
  categoryById,
  chatMessages,
  filterSelfQa,
  parseAnswer,
  parseInstructions,
  renderKnowledge,
  selfQaAnswerMessages,
  selfQaInstructionMessages,
  type SelfQaDropReason,
  type SelfQaPair,
  type SftItem,
} from '@xyp/synthesis';
import { z } from 'zod';
import { attempt, chatRequest, count, distinct } from './calls';
import { SelfQaRunConfig, checkModelNames, parseRunConfig, type SelfQaRunConfigInput } from './config';
import { runSynthesis, type ChunkGenerator, type RunOptions, type SynthesisRunResult } from './driver';
import type { InputRecord, InputValues, ValidInput } from './inputs';
import type { SynthesisOutcome } from './outcomes';

/** The line appended to the instruction prompt so that the list comes as JSON; its version goes into provenance. */
export const SELFQA_JSON_OUTPUT = {
  version: 'selfqa-json-output@1',
  text: '输出格式以此为准：只输出一个JSON对象 {"instructions": ["问题1", "问题2", …]}，每个元素是一个完整的问题，不要输出其他内容。',
} as const;

/** The structured reply: `{instructions: [...]}` or a bare list. */
export const SelfQaInstructionList = z.union([z.object({ instructions: z.array(z.string()) }), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : v.instructions));

const JSON_SCHEMA = {
  type: 'json_schema',
  json_schema: {
    name: 'selfqa_instructions',
    strict: true,
    schema: { type: 'object', properties: { instructions: { type: 'array', items: { type: 'string' } } }, required: ['instructions'], additionalProperties: false },
  },
} as const;

/** Pair drop reasons in `filterSelfQa`'s order (ties of the most frequent go to the earlier). */
const DROP_ORDER: readonly SelfQaDropReason[] = ['empty', 'refers-to-document', 'unsupported-answer', 'unsupported-number', 'exact-duplicate', 'near-duplicate'];

export interface SelfQaDeps extends Omit<RunOptions, 'gatewayStats'> {
  gateway: LlmGateway;
}

type Doc = ValidInput<InputValues['selfqa']>;
type DocResult = { outcome: SynthesisOutcome; items: SftItem[] };

/** The SelfQA generator for the driver (module comment). */
export function selfQaGenerator(configInput: SelfQaRunConfigInput, gateway: LlmGateway): ChunkGenerator<InputValues['selfqa']> {
  const config = parseRunConfig(SelfQaRunConfig, configInput, 'selfqa');
  checkModelNames(config.models, gateway.modelNames, 'selfqa');
  const generator = config.models.generator;

  async function document(doc: Doc, signal: AbortSignal, stats: Record<string, number>): Promise<DocResult> {
    const base = { id: doc.id, category: doc.category };
    const failed = (reason: string, detail: string): DocResult => ({ outcome: { ...base, status: 'failed', reason, detail }, items: [] });
    const source = { id: doc.id, category: doc.category, knowledge: doc.value.knowledge };
    const asked = selfQaInstructionMessages(source, config.instructionsPerDocument, categoryById(doc.category)?.name);
    const messages = asked.messages.map((m, i) => (i === asked.messages.length - 1 ? { ...m, content: `${m.content}\n${SELFQA_JSON_OUTPUT.text}` } : m));
    const listed = await attempt(() => gateway.chatStructured(generator, chatRequest(messages, config.sampling, config.jsonSchema ? { response_format: JSON_SCHEMA } : {}), SelfQaInstructionList, { repairs: config.repairs, signal }));
    if (!listed.ok) return failed('call-failed', listed.detail);
    count(stats, 'instructions.repairs', listed.value.repairs);
    if (!listed.value.ok) return failed('unparsed-instructions', listed.value.reason);
    const instructions = parseInstructions(JSON.stringify(listed.value.value)).slice(0, config.instructionsPerDocument);
    if (instructions.length === 0) return failed('no-instructions', 'the instruction list is empty');
    count(stats, 'instructions', instructions.length);

    const answers = await Promise.all(
      instructions.map((instruction) => attempt(() => gateway.chat(generator, chatRequest(selfQaAnswerMessages(source, instruction).messages, config.sampling), { signal }))),
    );
    const pairs: SelfQaPair[] = [];
    const models = new Map<string, string[]>();
    let callFailures = 0;
    answers.forEach((answer, i) => {
      const id = `${doc.id}/qa-${i + 1}`;
      if (!answer.ok) {
        callFailures++;
        return;
      }
      pairs.push({ id, instruction: instructions[i], answer: parseAnswer(answer.value.content) });
      models.set(id, distinct([listed.value.result.model, answer.value.model]));
    });
    count(stats, 'pairs.call-failed', callFailures);
    if (pairs.length === 0) return failed('call-failed', `every answer call failed (${callFailures}); first: ${(answers.find((a) => !a.ok) as { detail: string }).detail}`);

    const { kept, dropped } = filterSelfQa(renderKnowledge(doc.value.knowledge), pairs, config.filter);
    count(stats, 'pairs.kept', kept.length);
    for (const d of dropped) count(stats, `pairs.dropped.${d.reason}`);
    const items: SftItem[] = kept.map((pair) => ({
      id: pair.id,
      messages: chatMessages(pair.instruction, pair.answer),
      category: doc.category,
      provenance: {
        generator: 'selfqa',
        models: models.get(pair.id) ?? [generator],
        promptVersion: SELFQA_INSTRUCTIONS.version,
        promptVersions: [SELFQA_ANSWER.version, SELFQA_JSON_OUTPUT.version],
        sourceId: doc.id,
        supportScore: pair.supportScore,
      },
    }));
    if (items.length > 0) return { outcome: { ...base, status: 'kept', itemIds: items.map((i) => i.id) }, items };
    const tally = new Map<SelfQaDropReason, number>();
    for (const d of dropped) tally.set(d.reason, (tally.get(d.reason) ?? 0) + 1);
    const reason = DROP_ORDER.reduce<SelfQaDropReason | undefined>((best, r) => ((tally.get(r) ?? 0) > (best ? (tally.get(best) ?? 0) : 0) ? r : best), undefined) ?? 'empty';
    const detail = `0 of ${pairs.length} pair(s) kept: ${DROP_ORDER.filter((r) => tally.has(r)).map((r) => `${r} ${tally.get(r)}`).join(', ')}; first: ${dropped[0]?.detail ?? ''}`;
    return { outcome: { ...base, status: 'dropped', reason, detail }, items: [] };
  }

  return {
    method: 'selfqa',
    config,
    concurrency: config.concurrency,
    chunkSize: config.chunkSize,
    async run(docs, context) {
      const stats: Record<string, number> = {};
      const results = await Promise.all(docs.map((doc) => context.slot(() => document(doc, context.signal, stats))));
      return { items: results.flatMap((r) => r.items), outcomes: results.map((r) => r.outcome), stats };
    },
  };
}

/** SelfQA over `documents` (`readInputs('selfqa', path)`), committed to `deps.output`. */
export function runSelfQa(documents: AsyncIterable<InputRecord<InputValues['selfqa']>>, config: SelfQaRunConfigInput, deps: SelfQaDeps): Promise<SynthesisRunResult> {
  return runSynthesis(selfQaGenerator(config, deps.gateway), documents, { ...deps, gatewayStats: () => deps.gateway.stats() });
}
