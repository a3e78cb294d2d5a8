/**
 * The PEI-RLHF loop as the recipe runs it (`recipes/xuanyuan3.yaml`), in process: rlhf.ci-filter,
 * then for round r = 1 … maxRounds rlhf.ppo#round-r (policy: round 1 the SFT model, later the
 * round before; reference: SFT; prompts drawn by the round's ratios; KL from the round's
 * ratios.json — round 1 the CI filter's `klStart`) → rlhf.evaluate#round-r (against SFT) →
 * rlhf.improve#round-r, stopping at the first stop decision. Every stage's files go to `put`; a PPO
 * checkpoint goes to `commit` before the next stage reads it. Deterministic for the settings' seeds.
 */
import { mkdir } from 'node:fs/promises';
import { crc32, deflateSync, inflateSync } from 'node:zlib';
import { join } from 'node:path';
import { instanceId, type EngineJob } from '@xyp/contracts';
import type { BackendOptions } from '@xyp/engine';
import type { LocalEngine } from '@xyp/local-engine';
import { gainChart, peiLoopSummary, ratioTrajectoryChart, type PeiRound } from '@xyp/rlhf';
import type { HumanVerdict } from './evaluate';
import type { ReadPrompts } from './prompts';
import {
  SUBDOMAIN_LABELS,
  ciFilterStage,
  evaluateStage,
  improveStage,
  ppoStage,
  type CiFilterSettings,
  type CiFilterStageResult,
  type EvaluateSettings,
  type ImproveSettings,
  type PeiHistory,
  type PpoSettings,
  type StageFiles,
} from './stage-runs';

export interface PeiLoopRun {
  runId: string;
  /** The SFT policy: round 1's policy, every round's reference and baseline. */
  policy: string;
  reward: string;
  /** Prompts for the CI filter (read with its `subdomainPrefix`) and their file. */
  prompts: ReadPrompts;
  promptsSource: string;
  /** Held-out prompts for rlhf.evaluate (read with its `subdomainPrefix`) and their file. */
  evalPrompts: ReadPrompts;
  evalPromptsSource: string;
  human?: ReadonlyMap<string, HumanVerdict>;
  /** The LLM judge's API key, with `evaluate.judge` `llm` and a `judgeApiKeyEnv`. */
  judgeApiKey?: string;
  /** UFRM alignment rate per subdomain. */
  alignment: Record<string, number>;
  ciFilter: CiFilterSettings;
  ppo: PpoSettings;
  evaluate: EvaluateSettings;
  /** `maxRounds` is the loop's round limit. */
  improve: ImproveSettings;
  backend?: BackendOptions;
  /** Scratch directory (the drawn prompts of each PPO round). */
  workDir: string;
  /** Where a stage instance's files go (e.g. a directory per stage). */
  put: (stage: string, files: StageFiles) => Promise<void>;
  /** Commits a PPO checkpoint so later stages can load it. */
  commit: (job: Extract<EngineJob, { engine: 'local' }>) => Promise<void>;
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface PeiLoopRoundSummary {
  round: number;
  /** The PPO checkpoint of the round. */
  policy: string;
  kl: number;
  nextKl: number;
  ratiosBefore: Record<string, number>;
  ratiosAfter: Record<string, number>;
  /** Net win rate against SFT per subdomain (null: no judged pair). */
  gains: Record<string, number | null>;
  winTieLoss: { win: number; tie: number; loss: number; skip: number; n: number; netWinRate: number | null };
  ufrmGain: number;
  /** The policy's mean KL to SFT per held-out response (nats), from rlhf.evaluate. */
  meanKl: number;
  /** Whether `meanKl` stayed under rlhf.evaluate's `maxKl`. */
  klWithinBound: boolean;
  /**
   * The stage's PPO rounds: mean reward of the first and last, KL of the last rollouts; with a KL
   * bound, whether a round's rollouts went above it (`klBoundStop` 1) and how many rounds' updates
   * the returned policy holds (`keptUpdates`).
   */
  ppo: { firstMeanReward: number; lastMeanReward: number; lastMeanKl: number; klBoundStop?: number; keptUpdates?: number };
  draws: Record<string, number>;
  decision: { continue: boolean; reason: string };
}

export interface PeiLoopResult {
  ciFilter: CiFilterStageResult;
  rounds: PeiLoopRoundSummary[];
  peiRounds: PeiRound[];
  stopReason: string;
  /** The last round's PPO checkpoint. */
  finalPolicy: string;
  /** `peiLoopSummary` of every round. */
  markdown: string;
  /** loop.md, loop.html, ratios.png, gains.png of the whole loop. */
  files: StageFiles;
  /** Each stage instance's files, in run order (what `put` got). */
  stages: { stage: string; files: StageFiles }[];
}

const r6 = (x: number) => Number(x.toFixed(6));
const round6 = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, r6(v)]));

export async function runPeiLoop(engine: LocalEngine, run: PeiLoopRun): Promise<PeiLoopResult> {
  const say = run.onProgress ?? (() => undefined);
  const stages: PeiLoopResult['stages'] = [];
  const put = async (stage: string, files: StageFiles) => {
    stages.push({ stage, files });
    await run.put(stage, files);
  };
  say(`rlhf.ci-filter: ${run.prompts.prompts.length} prompts × ${run.ciFilter.samples} samples from ${run.policy}, scored by ${run.reward}`);
  const ci = await ciFilterStage(engine, {
    policy: run.policy,
    reward: run.reward,
    read: run.prompts,
    source: run.promptsSource,
    settings: run.ciFilter,
    backend: run.backend,
    signal: run.signal,
    onProgress: (done, total, what) => say(`rlhf.ci-filter: ${done}/${total} ${what}`),
  });
  await put('rlhf.ci-filter', ci.files);
  say(`rlhf.ci-filter: kept ${ci.result.kept} of ${ci.result.prompts} prompts`);
  if (ci.kept.length === 0) throw new Error('rlhf.ci-filter: no prompt kept: nothing to train PPO on');

  let history: PeiHistory = [{ round: 0, ratios: ci.result.ratios, kl: run.ciFilter.klStart }];
  let used = { ratios: ci.result.ratios, kl: run.ciFilter.klStart };
  let policy = run.policy;
  const rounds: PeiLoopRoundSummary[] = [];
  let peiRounds: PeiRound[] = [];
  let stopReason = `the round limit (${run.improve.maxRounds}) was reached`;
  await mkdir(run.workDir, { recursive: true });
  for (let round = 1; round <= run.improve.maxRounds; round++) {
    run.signal?.throwIfAborted();
    const instance = `round-${round}`;
    const ppoId = instanceId('rlhf.ppo', instance);
    say(`${ppoId}: PPO from ${policy}, KL ${used.kl}, ${run.ppo.rounds} PPO rounds × ${run.ppo.promptsPerRound} prompts`);
    const workDir = join(run.workDir, `round-${round}`);
    await mkdir(workDir, { recursive: true });
    const ppo = await ppoStage(engine, {
      runId: run.runId,
      stage: ppoId,
      policy,
      reference: run.policy,
      rewardModel: run.reward,
      prompts: ci.kept,
      ratios: used.ratios,
      kl: used.kl,
      settings: run.ppo,
      workDir,
      control: { signal: run.signal },
    });
    await run.commit(ppo.job);
    await put(ppoId, ppo.files);
    policy = ppo.job.checkpoint;

    const evalId = instanceId('rlhf.evaluate', instance);
    say(`${evalId}: ${policy} against ${run.policy} on ${run.evalPrompts.prompts.length} held-out prompts`);
    const ev = await evaluateStage(engine, {
      policy,
      baseline: run.policy,
      reward: run.reward,
      read: run.evalPrompts,
      source: run.evalPromptsSource,
      human: run.human,
      settings: run.evaluate,
      judgeApiKey: run.judgeApiKey,
      backend: run.backend,
      signal: run.signal,
      onProgress: (done, total, what) => say(`${evalId}: ${done}/${total} ${what}`),
    });
    await put(evalId, ev.files);
    const o = ev.out.overall;
    say(`${evalId}: judge ${ev.out.judge}: win ${o.win}, tie ${o.tie}, loss ${o.loss}, skip ${o.skip}; UFRM gain ${o.scoreGain.toFixed(4)}, KL ${o.kl.toFixed(3)}`);

    const improveId = instanceId('rlhf.improve', instance);
    const im = improveStage({ round, evaluation: { ...ev.out, maxKl: run.evaluate.maxKl }, used, alignment: run.alignment, history, settings: run.improve });
    await put(improveId, im.files);
    say(`${improveId}: ${im.out.decision.reason}`);
    history = im.history;
    peiRounds = im.rounds;
    const m = ppo.job.metrics;
    rounds.push({
      round,
      policy,
      kl: used.kl,
      nextKl: im.out.kl.after,
      ratiosBefore: round6(used.ratios),
      ratiosAfter: round6(im.out.grid.ratios),
      gains: Object.fromEntries(Object.keys(used.ratios).map((s) => [s, ev.out.bySubdomain[s]?.netWinRate ?? null])),
      winTieLoss: { win: o.win, tie: o.tie, loss: o.loss, skip: o.skip, n: o.n, netWinRate: o.netWinRate },
      ufrmGain: r6(o.scoreGain),
      meanKl: r6(o.kl),
      klWithinBound: ev.result.klWithinBound,
      ppo: {
        firstMeanReward: r6(m.firstMeanReward),
        lastMeanReward: r6(m.lastMeanReward),
        lastMeanKl: r6(m.lastMeanKl),
        ...(m.klBoundStop !== undefined ? { klBoundStop: m.klBoundStop, keptUpdates: m.keptUpdates } : {}),
      },
      draws: ppo.draws,
      decision: { continue: im.out.decision.continue, reason: im.out.decision.reason },
    });
    used = { ratios: im.out.grid.ratios, kl: im.out.kl.after };
    if (!im.out.decision.continue) {
      stopReason = im.out.decision.reason;
      break;
    }
  }
  const labels = { labels: SUBDOMAIN_LABELS };
  const markdown = peiLoopSummary(peiRounds, labels);
  const ratiosPng = ratioTrajectoryChart(peiRounds, labels);
  const gainsPng = gainChart(peiRounds, labels);
  const html = loopHtml({
    title: `PEI-RLHF loop ${run.runId}`,
    sections: [
      { heading: 'Loop', markdown, images: { 'ratios.png': ratiosPng, 'gains.png': gainsPng } },
      ...stages.map(({ stage, files }) => ({
        heading: stage,
        markdown: Object.entries(files)
          .filter(([name]) => name.endsWith('.md'))
          .map(([, body]) => String(body))
          .join('\n\n'),
        images: Object.fromEntries(Object.entries(files).filter(([name, body]) => name.endsWith('.png') && body instanceof Uint8Array)) as Record<string, Uint8Array>,
      })),
    ],
  });
  return {
    ciFilter: ci.result,
    rounds,
    peiRounds,
    stopReason,
    finalPolicy: policy,
    markdown,
    files: { 'loop.md': markdown, 'loop.html': html, 'ratios.png': ratiosPng, 'gains.png': gainsPng, 'history.json': `${JSON.stringify(history, null, 2)}\n` },
    stages,
  };
}

// ---------------------------------------------------------------------------------------------
// loop.html: the Markdown reports as HTML, the PNGs inlined.

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Inline Markdown: `code` and **bold**, the rest escaped. */
function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

/** Splits a table row on unescaped `|` (the reports escape `|` in cells as `\|`). */
function cells(row: string): string[] {
  const body = row.trim().replace(/^\|/, '').replace(/\|$/, '');
  return body.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
}

const isTableRow = (line: string) => /^\s*\|.*\|\s*$/.test(line);
const isAlignRow = (line: string) => /^\s*\|(\s*:?-+:?\s*\|)+\s*$/.test(line);

/**
 * The subset of Markdown the reports use, as HTML: `#` headings, pipe tables (with their
 * alignment row), `-` lists and paragraphs; `code` and **bold** inline. Everything else is text,
 * escaped.
 */
export function markdownToHtml(markdown: string): string {
  const lines = markdown.split(/\r?\n/);
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      i += 1;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      const level = heading[1].length;
      out.push(`<h${level}>${inline(heading[2])}</h${level}>`);
      i += 1;
      continue;
    }
    if (isTableRow(line) && i + 1 < lines.length && isAlignRow(lines[i + 1])) {
      const head = cells(line);
      const align = cells(lines[i + 1]).map((c) => (c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : ''));
      const style = (j: number) => (align[j] ? ` style="text-align:${align[j]}"` : '');
      const rows: string[] = [];
      i += 2;
      while (i < lines.length && isTableRow(lines[i])) {
        rows.push(`<tr>${cells(lines[i]).map((c, j) => `<td${style(j)}>${inline(c)}</td>`).join('')}</tr>`);
        i += 1;
      }
      out.push(`<table><thead><tr>${head.map((c, j) => `<th${style(j)}>${inline(c)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`);
      continue;
    }
    if (/^\s*-\s+/.test(line)) {
      const items: string[] = [];
      while (i < lines.length && /^\s*-\s+/.test(lines[i])) {
        items.push(`<li>${inline(lines[i].replace(/^\s*-\s+/, ''))}</li>`);
        i += 1;
      }
      out.push(`<ul>${items.join('')}</ul>`);
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && lines[i].trim() !== '' && !/^#{1,6}\s/.test(lines[i]) && !/^\s*-\s+/.test(lines[i]) && !(isTableRow(lines[i]) && isAlignRow(lines[i + 1] ?? ''))) {
      para.push(inline(lines[i]));
      i += 1;
    }
    out.push(`<p>${para.join('<br>')}</p>`);
  }
  return out.join('\n');
}

const PNG_SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);

/**
 * The same image with its pixel data deflated (the charts store it uncompressed): IDAT chunks
 * joined, inflated and deflated at level 9; every other chunk kept. Not a PNG: returned as is.
 */
export function compactPng(png: Uint8Array): Uint8Array {
  const buf = Buffer.from(png);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(PNG_SIGNATURE)) return png;
  const before: Buffer[] = [];
  const after: Buffer[] = [];
  const idat: Buffer[] = [];
  for (let at = 8; at + 12 <= buf.length; ) {
    const length = buf.readUInt32BE(at);
    const type = buf.subarray(at + 4, at + 8).toString('latin1');
    const chunk = buf.subarray(at, at + 12 + length);
    if (type === 'IDAT') idat.push(buf.subarray(at + 8, at + 8 + length));
    else (idat.length === 0 ? before : after).push(chunk);
    at += 12 + length;
  }
  if (idat.length === 0) return png;
  const data = deflateSync(inflateSync(Buffer.concat(idat)), { level: 9 });
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write('IDAT', 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  const out = Buffer.concat([PNG_SIGNATURE, ...before, head, data, crc, ...after]);
  return out.length < buf.length ? new Uint8Array(out) : png;
}

export interface HtmlSection {
  heading: string;
  markdown: string;
  /** PNGs by file name, inlined as base64 data URIs. */
  images?: Record<string, Uint8Array>;
}

/** One self-contained HTML page: each section's Markdown as HTML, then its PNGs inlined (deflated, `compactPng`). */
export function loopHtml(page: { title: string; sections: readonly HtmlSection[] }): string {
  const body = page.sections.map((s) => {
    const images = Object.entries(s.images ?? {}).map(
      ([name, png]) => `<figure><img alt="${escapeHtml(name)}" src="data:image/png;base64,${Buffer.from(compactPng(png)).toString('base64')}"><figcaption>${escapeHtml(name)}</figcaption></figure>`,
    );
    return `<section>\n<h2 class="stage">${escapeHtml(s.heading)}</h2>\n${markdownToHtml(s.markdown)}\n${images.join('\n')}\n</section>`;
  });
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escapeHtml(page.title)}</title>`,
    '<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.25em .6em}th{background:#f3f3f3}img{max-width:100%}section{border-top:2px solid #ddd;margin-top:2em}h2.stage{font-family:monospace}</style>',
    '</head>',
    '<body>',
    `<h1>${escapeHtml(page.title)}</h1>`,
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
