/**
 * Evol-Instruct (Xu et al., WizardLM, arXiv 2304.12244; seed 二, 金融常规问答类): the accumulated
 * finance QA evolved into harder and more varied instructions.
 *
 * One round: every active pool item gets one operation, drawn from a seeded RNG (`chooseEvolOperation`:
 * SplitMix32 seeded with deriveSeed(seed, 'evol-operation', round, itemId), so the draw does not
 * depend on the order of the pool), out of the five in-depth operations and in-breadth mutation
 * (uniform unless weighted). The caller renders the task's messages, calls the LLM for the
 * evolved instruction, asks for its response and judges equality with `EVOL_EQUALITY`, then hands
 * the outcomes back to `applyEvolRound`.
 *
 * Elimination evolving — the paper's four failure cases, checked in its order (`eliminationReason`):
 *   1. `no-information-gain`    the equality judge says the evolved instruction is Equal to its parent
 *                               (`equality-unparsed` when the judge's answer could not be read:
 *                               gain not shown, so treated as a failure)
 *   2. `apology-response`       the response is short (< `apologyMaxLength` = 80 length units: CJK
 *                               characters plus Latin words; the paper's "80 words") and apologises or
 *                               refuses (sorry, 抱歉, 对不起, 无法, 作为一个AI, …)
 *   3. `stopword-response`      the response is only punctuation and stop words (or empty)
 *   4. `copied-prompt-words`    the evolved instruction copies the evolving prompt's words
 *                               (#Rewritten Prompt#, given prompt, 改写后的, 给定的提示, …)
 * plus `empty-instruction` (checked first) and `call-failed` (the caller's LLM call failed).
 *
 * Pool (`EvolPool`, plain JSON for checkpoints, `parseEvolPool` to read one back): every item
 * ever admitted (seeds at depth 0, each successful evolution at its parent's depth + 1) and the ids
 * still to evolve. A success replaces its parent among the active items, unless it reached
 * `maxDepth` (then it is kept but evolves no further). A failure puts the parent back in the pool
 * (the paper: the failed instruction is returned so it can be evolved in the next round) and counts
 * the failure on it. The pool is done after `maxRounds` rounds or when nothing is active.
 */
import type { ChatTurn } from '@xyp/contracts';
import { createRng, deriveSeed } from '@xyp/random';
import { z } from 'zod';
import { SynthesisInputError, parseWith } from './errors';
import { EVOL_OPERATIONS, renderEvolution, type EvolOperation } from './prompts';
import { isCjk, lengthUnits } from './text';


// ---------------------------------------------------------------- operation choice

/**
 * The operation for `itemId` in `round`: a weighted draw (uniform over `EVOL_OPERATIONS` when no
 * weights are given) from SplitMix32 seeded with deriveSeed(seed, 'evol-operation', round, itemId).
 * An operation with weight 0 (or missing from `weights`) is never drawn.
 */
export function chooseEvolOperation(seed: number, round: number, itemId: string, weights?: Partial<Record<EvolOperation, number>>): EvolOperation {
  const table = EVOL_OPERATIONS.map((operation) => ({ operation, weight: weights ? (weights[operation] ?? 0) : 1 }));
  for (const { operation, weight } of table) {
    if (!(Number.isFinite(weight) && weight >= 0)) throw new SynthesisInputError(`weights.${operation}: must be a finite number >= 0, got ${weight}`, `weights.${operation}`);
  }
  const total = table.reduce((sum, t) => sum + t.weight, 0);
  if (total <= 0) throw new SynthesisInputError('weights: at least one operation needs a weight > 0', 'weights');
  let draw = createRng(deriveSeed(seed, 'evol-operation', round, itemId)).nextFloat() * total;
  let last: EvolOperation = EVOL_OPERATIONS[0];
  for (const { operation, weight } of table) {
    if (weight === 0) continue;
    if (draw < weight) return operation;
    draw -= weight;
    last = operation;
  }
  // Only floating-point rounding of the running difference gets here: the last weighted operation.
  return last;
}

// ---------------------------------------------------------------- equality verdict

export type EqualityVerdict = 'equal' | 'not-equal';

/**
 * The equality judge's verdict: `Not Equal` / `Unequal` / 不相同 / 不等同 / 不一样 / 不等价 →
 * not-equal; `Equal` / 相同 / 等同 / 一样 / 等价 → equal; case, markdown and punctuation ignored.
 * An answer with both (or neither) is null: unreadable.
 */
export function parseEqualityVerdict(text: string): EqualityVerdict | null {
  let body = text.normalize('NFKC').toLowerCase().replace(/[*_`#>"'“”‘’]/gu, ' ');
  const negative = /\bnot[\s-]*equal\b|\bunequal\b|不(?:相同|等同|相等|等价|一样|一致)/gu;
  const negatives = body.match(negative)?.length ?? 0;
  body = body.replace(negative, ' ');
  const positives = body.match(/\bequal\b|相同|等同|相等|等价|一样|一致/gu)?.length ?? 0;
  if (negatives > 0 && positives === 0) return 'not-equal';
  if (positives > 0 && negatives === 0) return 'equal';
  return null;
}

// ---------------------------------------------------------------- elimination

/** Apologies and refusals (rule 2). */
const APOLOGY = /sorry|apologi[sz]e|抱歉|对不起|很遗憾|无法|不能(?:回答|提供|帮助|协助)|作为(?:一个|一名)?\s*(?:ai|人工智能|语言模型|大模型|ai助手)|as an ai|i(?:'m| am) (?:unable|not able)|i can(?:not|'t)/iu;

/** Chinese stop words (rule 3), matched longest first inside a CJK run. */
export const ZH_STOP_WORDS: readonly string[] = [
  '的', '了', '是', '在', '和', '与', '及', '或', '也', '就', '都', '而', '并', '等', '呢', '吗', '吧', '啊', '哦', '嗯', '呀', '么', '之', '其', '这', '那',
  '这个', '那个', '这些', '那些', '我', '你', '您', '他', '她', '它', '我们', '你们', '他们', '有', '没有', '不', '很', '还', '又', '被', '把', '给', '对', '于',
  '从', '到', '以', '为', '所以', '因为', '但是', '但', '如果', '可以', '一个', '什么', '怎么', '好的', '好', '是的', '嗯嗯', '哈', '哈哈', '啦', '哎', '唉',
];

/** English stop words (rule 3). */
export const EN_STOP_WORDS: readonly string[] = [
  'a', 'an', 'the', 'and', 'or', 'but', 'if', 'of', 'to', 'in', 'on', 'at', 'for', 'with', 'by', 'from', 'as', 'is', 'are', 'was', 'were', 'be', 'been', 'being',
  'it', 'its', 'this', 'that', 'these', 'those', 'i', 'you', 'he', 'she', 'we', 'they', 'me', 'my', 'your', 'our', 'their', 'his', 'her', 'them', 'us', 'do',
  'does', 'did', 'so', 'not', 'no', 'yes', 'ok', 'okay', 'well', 'just', 'very', 'too', 'also', 'then', 'there', 'here', 'what', 'which', 'who', 'how', 'can',
  'will', 'would', 'should', 'could', 'have', 'has', 'had', 'oh', 'um', 'uh', 'sure',
];

const ZH_STOP = [...new Set(ZH_STOP_WORDS)].sort((a, b) => b.length - a.length);
const EN_STOP = new Set(EN_STOP_WORDS);

/** Whether `text` has nothing but punctuation, symbols, whitespace and stop words (empty included). */
export function onlyStopWords(text: string): boolean {
  const runs = text.normalize('NFKC').toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  for (const run of runs) {
    const chars = [...run];
    let i = 0;
    while (i < chars.length) {
      if (!isCjk(chars[i])) {
        // A Latin/digit word inside the run (the run may mix scripts: `ok好的`).
        let j = i;
        while (j < chars.length && !isCjk(chars[j])) j++;
        if (!EN_STOP.has(chars.slice(i, j).join(''))) return false;
        i = j;
        continue;
      }
      const rest = chars.slice(i).join('');
      const word = ZH_STOP.find((w) => rest.startsWith(w));
      if (word === undefined) return false;
      i += [...word].length;
    }
  }
  return true;
}

/** The evolving prompts' own words, which must not appear in an evolved instruction (rule 4). */
export const EVOL_PROMPT_WORDS: readonly string[] = ['#Rewritten Prompt#', '#Given Prompt#', '#The Given Prompt#', '#Created Prompt#', 'given prompt', 'rewritten prompt', 'created prompt', '改写后的', '给定的提示'];

export type EvolEliminationReason = 'empty-instruction' | 'no-information-gain' | 'equality-unparsed' | 'apology-response' | 'stopword-response' | 'copied-prompt-words';
export type EvolFailureReason = EvolEliminationReason | 'call-failed';

export interface EliminationInput {
  /** The evolved instruction. */
  instruction: string;
  /** The LLM's response to it. */
  response: string;
  /** `parseEqualityVerdict` of the equality judge's answer. */
  equality: EqualityVerdict | null;
}

export interface EliminationOptions {
  /** Rule 2: a response shorter than this many length units (CJK characters + Latin words) that apologises fails. */
  apologyMaxLength?: number;
}

/** Why an evolution failed (module comment, rules in the paper's order), or undefined when it survives. */
export function eliminationReason(input: EliminationInput, options: EliminationOptions = {}): EvolEliminationReason | undefined {
  const apologyMaxLength = options.apologyMaxLength ?? 80;
  if (input.instruction.trim().length === 0) return 'empty-instruction';
  if (input.equality === 'equal') return 'no-information-gain';
  if (input.equality === null) return 'equality-unparsed';
  if (APOLOGY.test(input.response.normalize('NFKC')) && lengthUnits(input.response) < apologyMaxLength) return 'apology-response';
  if (onlyStopWords(input.response)) return 'stopword-response';
  const lowered = input.instruction.normalize('NFKC').toLowerCase();
  if (EVOL_PROMPT_WORDS.some((w) => lowered.includes(w.toLowerCase()))) return 'copied-prompt-words';
  return undefined;
}

// ---------------------------------------------------------------- pool

const Operation = z.enum(EVOL_OPERATIONS);

const EvolPoolItemSchema = z
  .object({
    id: z.string().min(1),
    /** The seed this item descends from. */
    rootId: z.string().min(1),
    parentId: z.string().min(1).optional(),
    category: z.string().min(1),
    instruction: z.string(),
    /** The response generated for the evolved instruction (seeds: their own answer, if any). */
    response: z.string().optional(),
    /** Generation depth: 0 for a seed, parent's + 1 for an evolution. */
    depth: z.number().int().nonnegative(),
    /** The operation that made it (absent for a seed). */
    operation: Operation.optional(),
    /** Model that wrote the evolved instruction, and the one that wrote the response. */
    models: z.array(z.string().min(1)).optional(),
    /** Prompt version that made it. */
    promptVersion: z.string().optional(),
    /** The round that admitted it (0 for a seed). */
    round: z.number().int().nonnegative(),
    /** How many evolutions of this item failed. */
    failures: z.number().int().nonnegative(),
  })
  .strict();
export type EvolPoolItem = z.infer<typeof EvolPoolItemSchema>;

const EvolFailureSchema = z
  .object({ round: z.number().int().positive(), taskId: z.string(), itemId: z.string(), operation: Operation, reason: z.string(), detail: z.string().optional() })
  .strict();
export type EvolFailure = { round: number; taskId: string; itemId: string; operation: EvolOperation; reason: EvolFailureReason; detail?: string };

const WeightsSchema = z.partialRecord(Operation, z.number().min(0));

const EvolPoolSchema = z
  .object({
    format: z.literal('evol-pool@1'),
    seed: z.number().int(),
    maxDepth: z.number().int().positive(),
    maxRounds: z.number().int().positive(),
    weights: WeightsSchema.optional(),
    apologyMaxLength: z.number().positive().optional(),
    /** Rounds completed. */
    round: z.number().int().nonnegative(),
    items: z.array(EvolPoolItemSchema),
    /** Ids of the items the next round evolves, in pool order. */
    active: z.array(z.string()),
    failures: z.array(EvolFailureSchema),
  })
  .strict();

/** The whole state of an Evol-Instruct run: plain data, JSON-serialisable (a checkpoint). */
export interface EvolPool {
  format: 'evol-pool@1';
  seed: number;
  maxDepth: number;
  maxRounds: number;
  weights?: Partial<Record<EvolOperation, number>>;
  apologyMaxLength?: number;
  round: number;
  items: EvolPoolItem[];
  active: string[];
  failures: EvolFailure[];
}

export const EvolPoolConfig = z
  .object({
    seed: z.number().int(),
    /** An item at this depth evolves no further. */
    maxDepth: z.number().int().positive().default(4),
    /** The pool stops after this many rounds (WizardLM ran 4 epochs). */
    maxRounds: z.number().int().positive().default(4),
    weights: WeightsSchema.optional(),
    apologyMaxLength: z.number().positive().optional(),
  })
  .strict();
export type EvolPoolConfigInput = z.input<typeof EvolPoolConfig>;

export interface EvolSeed {
  id: string;
  category: string;
  instruction: string;
  response?: string;
}

function checkInvariants(pool: EvolPool, field: string): EvolPool {
  const ids = new Set<string>();
  for (const [i, item] of pool.items.entries()) {
    if (ids.has(item.id)) throw new SynthesisInputError(`${field}.items[${i}].id: ${item.id} appears twice`, `${field}.items`);
    ids.add(item.id);
  }
  const active = new Set<string>();
  for (const id of pool.active) {
    if (!ids.has(id)) throw new SynthesisInputError(`${field}.active: ${id} is not a pool item`, `${field}.active`);
    if (active.has(id)) throw new SynthesisInputError(`${field}.active: ${id} appears twice`, `${field}.active`);
    active.add(id);
  }
  return pool;
}

/** A pool of seed instructions (depth 0), all active, round 0. Ids must be unique. */
export function createEvolPool(seeds: readonly EvolSeed[], config: EvolPoolConfigInput): EvolPool {
  const settings = parseWith(EvolPoolConfig, config, 'evol');
  const items: EvolPoolItem[] = seeds.map((s) => ({
    id: s.id,
    rootId: s.id,
    category: s.category,
    instruction: s.instruction,
    ...(s.response !== undefined ? { response: s.response } : {}),
    depth: 0,
    round: 0,
    failures: 0,
  }));
  const pool: EvolPool = {
    format: 'evol-pool@1',
    seed: settings.seed,
    maxDepth: settings.maxDepth,
    maxRounds: settings.maxRounds,
    ...(settings.weights ? { weights: settings.weights } : {}),
    ...(settings.apologyMaxLength !== undefined ? { apologyMaxLength: settings.apologyMaxLength } : {}),
    round: 0,
    items,
    active: items.map((i) => i.id),
    failures: [],
  };
  return checkInvariants(pool, 'seeds');
}

/** A pool read back from a checkpoint (validated: schema, unique ids, active ids exist). */
export function parseEvolPool(value: unknown): EvolPool {
  return checkInvariants(parseWith(EvolPoolSchema, value, 'pool') as EvolPool, 'pool');
}

/** Whether the pool is done, and why. */
export function evolPoolStatus(pool: EvolPool): { done: false } | { done: true; reason: 'max-rounds' | 'pool-empty' } {
  if (pool.round >= pool.maxRounds) return { done: true, reason: 'max-rounds' };
  if (pool.active.length === 0) return { done: true, reason: 'pool-empty' };
  return { done: false };
}

export interface EvolTask {
  /** `<itemId>@r<round>`: the id an outcome answers. */
  taskId: string;
  itemId: string;
  round: number;
  operation: EvolOperation;
  promptVersion: string;
  /** The evolving prompt for the caller's LLM call. */
  messages: ChatTurn[];
}

function itemMap(pool: EvolPool): Map<string, EvolPoolItem> {
  return new Map(pool.items.map((i) => [i.id, i] as const));
}

function itemOf(items: ReadonlyMap<string, EvolPoolItem>, id: string): EvolPoolItem {
  const item = items.get(id);
  if (!item) throw new SynthesisInputError(`pool.active: ${id} is not a pool item`, 'pool.active');
  return item;
}

/**
 * The next round's tasks, one per active item in pool order. `categoryName(id)` gives the
 * Chinese name the prompt mentions (optional). Throws when the pool is done.
 */
export function planEvolRound(pool: EvolPool, categoryName?: (category: string) => string | undefined): EvolTask[] {
  const status = evolPoolStatus(pool);
  if (status.done) throw new SynthesisInputError(`pool: done (${status.reason}) after ${pool.round} rounds; nothing to plan`, 'pool');
  const round = pool.round + 1;
  const items = itemMap(pool);
  return pool.active.map((id) => {
    const item = itemOf(items, id);
    const operation = chooseEvolOperation(pool.seed, round, id, pool.weights);
    const { promptVersion, messages } = renderEvolution(operation, { instruction: item.instruction, categoryName: categoryName?.(item.category) });
    return { taskId: `${id}@r${round}`, itemId: id, round, operation, promptVersion, messages };
  });
}

/** What the caller got back for one task: the evolution, its response and the equality verdict; or the call's failure. */
export type EvolOutcome =
  | { taskId: string; instruction: string; response: string; equality: EqualityVerdict | null; models?: string[] }
  | { taskId: string; error: string };

export interface EvolRoundResult {
  pool: EvolPool;
  /** The items this round admitted. */
  evolved: EvolPoolItem[];
  /** The tasks that failed, with their reasons. */
  failed: EvolFailure[];
}

/**
 * Applies one round's outcomes (one per task of `planEvolRound(pool)`, any order) and returns
 * the next pool; `pool` is not changed. A missing, unknown or repeated task id throws.
 * The child of `<rootId>` at depth d gets id `<rootId>/evol-<d>` (one lineage per seed, so unique).
 */
export function applyEvolRound(pool: EvolPool, outcomes: readonly EvolOutcome[]): EvolRoundResult {
  const tasks = planEvolRound(pool);
  const byTask = new Map<string, EvolOutcome>();
  const known = new Set(tasks.map((t) => t.taskId));
  for (const [i, outcome] of outcomes.entries()) {
    if (!known.has(outcome.taskId)) throw new SynthesisInputError(`outcomes[${i}].taskId: ${outcome.taskId} is not a task of round ${pool.round + 1}`, `outcomes[${i}].taskId`);
    if (byTask.has(outcome.taskId)) throw new SynthesisInputError(`outcomes[${i}].taskId: ${outcome.taskId} has two outcomes`, `outcomes[${i}].taskId`);
    byTask.set(outcome.taskId, outcome);
  }
  const missing = tasks.filter((t) => !byTask.has(t.taskId)).map((t) => t.taskId);
  if (missing.length > 0) throw new SynthesisInputError(`outcomes: no outcome for ${missing.join(', ')}`, 'outcomes');

  const items = itemMap(pool);
  const ids = new Set(items.keys());
  const updated = new Map<string, EvolPoolItem>();
  const evolved: EvolPoolItem[] = [];
  const failed: EvolFailure[] = [];
  const active: string[] = [];
  for (const task of tasks) {
    const parent = itemOf(items, task.itemId);
    const outcome = byTask.get(task.taskId);
    if (!outcome) throw new SynthesisInputError(`outcomes: no outcome for ${task.taskId}`, 'outcomes');
    const reason: EvolFailureReason | undefined = 'error' in outcome ? 'call-failed' : eliminationReason(outcome, { apologyMaxLength: pool.apologyMaxLength });
    if (reason !== undefined || 'error' in outcome) {
      failed.push({ round: task.round, taskId: task.taskId, itemId: parent.id, operation: task.operation, reason: reason ?? 'call-failed', ...('error' in outcome ? { detail: outcome.error } : {}) });
      updated.set(parent.id, { ...parent, failures: parent.failures + 1 });
      active.push(parent.id);
      continue;
    }
    const depth = parent.depth + 1;
    const id = `${parent.rootId}/evol-${depth}`;
    if (ids.has(id)) throw new SynthesisInputError(`pool: the evolution of ${parent.id} would get id ${id}, which an item already has`, 'pool.items');
    ids.add(id);
    const child: EvolPoolItem = {
      id,
      rootId: parent.rootId,
      parentId: parent.id,
      category: parent.category,
      instruction: outcome.instruction.trim(),
      response: outcome.response,
      depth,
      operation: task.operation,
      ...(outcome.models ? { models: outcome.models } : {}),
      promptVersion: task.promptVersion,
      round: task.round,
      failures: 0,
    };
    evolved.push(child);
    if (depth < pool.maxDepth) active.push(id);
  }
  const next: EvolPool = {
    ...pool,
    round: pool.round + 1,
    items: [...pool.items.map((i) => updated.get(i.id) ?? i), ...evolved],
    active,
    failures: [...pool.failures, ...failed],
  };
  return { pool: next, evolved, failed };
}

/** The evolved items (depth ≥ 1) of a pool: what becomes SFT data. */
export function evolvedItems(pool: EvolPool): EvolPoolItem[] {
  return pool.items.filter((i) => i.depth > 0);
}
