/**
 * What the specs share (not exported from the lib's index): a deterministic responder for the
 * fault server that answers each prompt kind of `@xyp/synthesis` well-formed, keyed on the
 * prompt's text, and small helpers around a gateway on that server and temporary outputs.
 *
 * The responder:
 * - SelfQA instructions: `{"instructions": [...]}` with one question per sentence of the document
 *   (`关于“<first 8 chars>”，有哪些要点？`); a document containing `BAD-JSON` gets prose every time;
 *   one containing `REPAIR` gets prose first and JSON once re-asked (the repair turn is present);
 * - SelfQA answer: the document sentence the question quotes (a document containing `REFER` gets
 *   `根据上文，` before it, which the filters drop);
 * - Evol in-depth: the given prompt plus `（请给出详细的计算步骤）`, or unchanged when it contains
 *   `EQUAL`; in-breadth: a new prompt built on the given one;
 * - the equality judge: `Equal` when both instructions are the same text, else `Not Equal`;
 * - analysis: the headings of the last exemplar shown, each with a long paragraph (one line of
 *   text when the topic contains `SHORT`);
 * - fusion: `综合回答：` and a hash of the user turn;
 * - anything else (an ensemble answer, an evolved instruction's response): `answer(modelId, text)`.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlmGateway, type FakeChatBody, type ResponseCache } from '@xyp/llm';

const between = (text: string, start: string, end: string): string => {
  const from = text.indexOf(start);
  if (from < 0) return '';
  const rest = text.slice(from + start.length);
  const to = rest.indexOf(end);
  return to < 0 ? rest : rest.slice(0, to);
};

const sentences = (document: string) =>
  document
    .split(/[。\n]/u)
    .map((s) => s.trim())
    .filter((s) => s.length >= 8);

const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

export interface ResponderOptions {
  /** The answer of model `modelId` to a plain user turn. */
  answer?: (modelId: string, text: string) => string;
}

export function defaultAnswer(_modelId: string, text: string): string {
  return `这是对该问题的详细解答：首先说明相关背景与基本概念，其次给出分析与计算过程，最后总结结论与注意事项。问题回顾：${text}`;
}

/** The responder of the module comment, for `startFakeOpenAi({respond})`. */
export function synthesisResponder(options: ResponderOptions = {}): (body: FakeChatBody) => string {
  const answer = options.answer ?? defaultAnswer;
  return (body) => {
    const messages = body.messages;
    const system = messages.find((m) => m.role === 'system')?.content ?? '';
    const users = messages.filter((m) => m.role === 'user');
    const first = users[0]?.content ?? '';
    const last = users[users.length - 1]?.content ?? '';
    if (first.includes('请根据以上背景知识，生成')) {
      const document = between(first, '以下是背景知识：\n', '\n\n请根据');
      const repaired = users.length > 1;
      if (document.includes('BAD-JSON') || (document.includes('REPAIR') && !repaired)) return '好的，以下是问题：一、净值是什么；二、基准是什么。';
      return JSON.stringify({ instructions: sentences(document).map((s) => `关于“${s.slice(0, 8)}”，有哪些要点？`) });
    }
    if (first.includes('请依据以上背景知识回答下面的问题：')) {
      const document = between(first, '以下是背景知识：\n', '\n\n请依据');
      const quoted = between(first, '关于“', '”');
      const sentence = sentences(document).find((s) => s.startsWith(quoted)) ?? '';
      return document.includes('REFER') ? `根据上文，${sentence}。` : `${sentence}。`;
    }
    if (first.includes('#The Given Prompt#:\n')) {
      const given = between(first, '#The Given Prompt#:\n', '\n#Rewritten Prompt#:').trim();
      return given.includes('EQUAL') ? given : `${given}（请给出详细的计算步骤）`;
    }
    if (first.includes('#Given Prompt#:\n')) {
      const given = between(first, '#Given Prompt#:\n', '\n#Created Prompt#:').trim();
      return `在另一种少见的市场情形下：${given}`;
    }
    if (first.includes('只需回答 Equal 或 Not Equal')) {
      const a = between(first, '第一条指令：', '\n').trim();
      const b = between(first, '第二条指令：', '\n').trim();
      return a === b ? 'Equal' : 'Not Equal';
    }
    if (system.includes('资深金融分析师')) {
      const exemplar = [...messages].reverse().find((m) => m.role === 'assistant')?.content ?? '';
      const headings = exemplar.split('\n').filter((line) => line.startsWith('【'));
      if (last.includes('SHORT')) return `${headings.join('\n')}\n简短。`;
      return headings.map((h) => `${h}\n${'围绕该主题展开的专业分析，结合行业数据与政策背景，给出有依据的判断和结论。'.repeat(3)}`).join('\n');
    }
    if (system.includes('综合成一个高质量的回答')) return `综合回答：${hash(last)}`;
    return answer(body.model ?? '', last);
  };
}

/** A gateway over models on one server (`[registry name, model id]` pairs), retrying fast. */
export function testGateway(url: string, models: readonly (readonly [string, string])[], options: { cache?: ResponseCache; maxAttempts?: number } = {}): LlmGateway {
  return new LlmGateway({
    models: models.map(([name, model]) => ({ name, baseUrl: url, model, maxConcurrency: 16, timeoutMs: 5_000, cooldown: { minCalls: 1000, windowMs: 60_000, cooldownMs: 1 } })),
    backoffScale: 0.002,
    maxAttempts: options.maxAttempts ?? 5,
    random: () => 0.5,
    ...(options.cache ? { cache: options.cache } : {}),
  });
}

/** A fresh temporary directory and its removal. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `xyp-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The JSON lines of a file. */
export async function jsonLines<T = Record<string, unknown>>(path: string): Promise<T[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}

/** Every file under `dir`, relative, sorted. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) out.push(join(entry.parentPath, entry.name).slice(dir.length + 1));
  return out.sort();
}

/** JSONL lines of input objects. */
export function jsonl(rows: readonly unknown[]): string {
  return rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';
}
