/**
 * `xyp rlhf loop|ci-filter|ppo|evaluate|improve`: the PEI-RLHF stages of the recipe in process, on
 * the local engine and the configured store, without the platform. Each writes the files the
 * platform's worker commits to an output directory (one folder per stage instance); `loop` runs
 * rlhf.ci-filter, then rounds of rlhf.ppo → rlhf.evaluate → rlhf.improve until the first stop
 * decision (`runPeiLoop` of `@xyp/rlhf-stages`). Progress on stderr, one JSON object with --json.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { instanceId, type CausalLmSpecInput, type EngineJob, type SftSpecInput } from '@xyp/contracts';
import { newRunId } from '@xyp/engine';
import type { LocalEngine } from '@xyp/local-engine';
import {
  alignmentRates,
  ciFilterSettings,
  ciFilterStage,
  evaluateSettings,
  evaluateStage,
  improveSettings,
  improveStage,
  parseHumanVerdicts,
  ppoSettings,
  ppoStage,
  readRlhfPrompts,
  readRoundRatios,
  runPeiLoop,
  type PeiHistory,
  type ReadPrompts,
  type StageFiles,
} from '@xyp/rlhf-stages';
import { ingestSft, writeSftCollections } from '@xyp/training-data';
import type { ArtifactStore } from '@xyp/storage';
import { exitWithError, printResult, progress } from '../cli-output';
import { existingFile, fraction, intAtLeast, jsonFile, positiveInt, positiveNumber } from '../flags';
import { commitCheckpoint, configuredBackend, configuredStore } from '../engine-runtime';
import { sampleShards } from '../sample-shards';
import { alignmentOf, localEngine, preparePairs, readRecords, trainPhase, writeAlignmentReport, type PhaseSettings } from '../reward/reward-runs';
import { SAMPLE_SFT } from './train-policy';
import { SAMPLE_PREFERENCES } from './reward';

type LocalJob = Extract<EngineJob, { engine: 'local' }>;

// ---------------------------------------------------------------------------------------------
// Flags and files

function finite(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`--${flag} must be a number, got ${value}`);
  return n;
}

function nonNegative(flag: string, value: string): number {
  const n = finite(flag, value);
  if (n < 0) throw new Error(`--${flag} must be a number ≥ 0, got ${value}`);
  return n;
}

function atLeastTwo(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 2) throw new Error(`--${flag} must be an integer ≥ 2 (a std needs two scores), got ${value}`);
  return n;
}

function quantile(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new Error(`--${flag} must be a number in [0, 1], got ${value}`);
  return n;
}

function share(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new Error(`--${flag} must be a number in (0, 1], got ${value}`);
  return n;
}

/** `--X` or `--X-quantile`, not both. */
function threshold(flag: string, absolute: string | undefined, q: string | undefined): { absolute: number } | { quantile: number } | undefined {
  if (absolute !== undefined && q !== undefined) throw new Error(`give --${flag} or --${flag}-quantile, not both`);
  if (absolute !== undefined) return { absolute: finite(flag, absolute) };
  if (q !== undefined) return { quantile: quantile(`${flag}-quantile`, q) };
  return undefined;
}

async function ratiosFile(flag: string, path: string): Promise<{ ratios: Record<string, number>; kl: number }> {
  const full = existingFile(flag, path);
  return readRoundRatios(await readFile(full, 'utf8'), `--${flag} ${path}`);
}

async function promptsFile(flag: string, path: string, subdomainPrefix: string): Promise<ReadPrompts> {
  const full = existingFile(flag, path);
  const read = await readRlhfPrompts(full, { subdomainPrefix });
  if (read.rejects.length > 0) progress(`--${flag} ${path}: ${read.rejects.length} of ${read.lines} lines rejected (first: line ${read.rejects[0].line}: ${read.rejects[0].reason})`);
  return read;
}

async function alignmentFile(flag: string, path: string, variant?: string): Promise<Record<string, number>> {
  const value = jsonFile(flag, path);
  try {
    return alignmentRates(value, variant);
  } catch (error) {
    throw new Error(`--${flag} ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

async function writeStage(out: string, stage: string, files: StageFiles): Promise<string> {
  const dir = join(out, stage);
  await mkdir(dir, { recursive: true });
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, name), body);
  return dir;
}

function engineFor(store: ArtifactStore): LocalEngine {
  return localEngine(store, configuredBackend(), progress);
}

function local(job: EngineJob): LocalJob {
  if (job.engine !== 'local') throw new Error('expected a local job');
  return job;
}

const since = (start: number) => Number(((Date.now() - start) / 1000).toFixed(1));

interface JudgeOptions {
  judge?: string;
  judgeBaseUrl?: string;
  judgeModel?: string;
  judgeApiKeyEnv?: string;
  maxKl?: string;
}

function withJudgeOptions(command: Command): Command {
  return command
    .option('--judge <name>', 'reference (the reference-F1 judge, no model) or llm (MT-Bench pairwise over an OpenAI-compatible endpoint)', 'reference')
    .option('--judge-base-url <url>', 'llm judge: the server root')
    .option('--judge-model <name>', 'llm judge: the model')
    .option('--judge-api-key-env <VAR>', 'llm judge: the environment variable holding the API key')
    .option('--max-kl <x>', 'the KL bound, nats per response (default 5)');
}

/** rlhf.evaluate's judge settings from the flags, and the API key from the named variable. */
function judgeSettings(o: JudgeOptions): { settings: Record<string, unknown>; apiKey?: string } {
  if (o.judge !== undefined && o.judge !== 'reference' && o.judge !== 'llm') throw new Error(`--judge must be reference or llm, got ${o.judge}`);
  if (o.judge === 'llm' && (!o.judgeBaseUrl || !o.judgeModel)) throw new Error('--judge llm needs --judge-base-url and --judge-model');
  if (o.judgeBaseUrl !== undefined && !/^https?:\/\//.test(o.judgeBaseUrl)) throw new Error(`--judge-base-url must be an http(s) URL, got ${o.judgeBaseUrl}`);
  const apiKey = o.judgeApiKeyEnv ? process.env[o.judgeApiKeyEnv] : undefined;
  if (o.judge === 'llm' && o.judgeApiKeyEnv && !apiKey) throw new Error(`--judge-api-key-env: ${o.judgeApiKeyEnv} is not set`);
  return {
    settings: { judge: o.judge, judgeBaseUrl: o.judgeBaseUrl, judgeModel: o.judgeModel, judgeApiKeyEnv: o.judgeApiKeyEnv, maxKl: o.maxKl === undefined ? undefined : positiveNumber('max-kl', o.maxKl) },
    apiKey,
  };
}

// ---------------------------------------------------------------------------------------------
// --sample: the policy (CPT → SFT) and the UFRM reward model, trained in process

/** The smaller budget `xyp rlhf loop --sample` trains with (`xyp train cpt|sft --sample`, `xyp reward train --sample` defaults otherwise). */
export const SAMPLE_BUDGET = { cptSteps: 120, cptStages: 3, sftEpochs: 2, rewardSteps: 150, rewardSeeds: 1 } as const;

const ARCHITECTURE = { layers: 2, width: 64, heads: 4, context: 256 };

/** The SFT sample's split, written where `xyp train sft --sample` writes it (`.xyp/sft/<runId>`). */
async function sampleSftSplit(runId: string): Promise<{ dir: string; train: string; heldOut: string; counts: Record<string, number> }> {
  const ingested = await ingestSft(SAMPLE_SFT, { heldOutFraction: 0.1, onProgress: (p) => progress(`sft input: ${p.lines} lines read, ${p.accepted} accepted, ${p.rejected} rejected`) });
  const dir = resolve('.xyp/sft', runId);
  const paths = await writeSftCollections(ingested, dir);
  return { dir, train: paths.train, heldOut: paths.heldOut, counts: { lines: ingested.counts.lines, accepted: ingested.counts.accepted, train: ingested.counts.train, heldOut: ingested.counts.heldOut } };
}

async function trainSamplePolicy(engine: LocalEngine, runId: string, seed: number, split: { train: string; heldOut: string }): Promise<{ cpt: string; sft: string; cptMetrics: Record<string, number>; sftMetrics: Record<string, number> }> {
  const source = await sampleShards(progress);
  const steps = SAMPLE_BUDGET.cptSteps;
  const cptSpec: CausalLmSpecInput = {
    runId,
    stage: 'cpt',
    steps,
    batchSize: 8,
    seed,
    optimizer: { lr: 3e-3, warmupSteps: Math.min(10, Math.floor(steps / 10)), weightDecay: 0.1, clipNorm: 1 },
    architecture: ARCHITECTURE,
    data: { shards: { source } },
    mixture: { stages: SAMPLE_BUDGET.cptStages, config: {}, validationFraction: 0.1, validationRows: 16, evalEvery: 20, logEvery: 2 },
  };
  progress(`cpt: ${steps} steps on the sample corpus (${source})`);
  const cpt = local(await engine.trainCausalLm(cptSpec));
  await commitCheckpoint(engine.store, cpt);
  const sftSpec: SftSpecInput = {
    runId,
    stage: 'sft',
    batchSize: 8,
    seed,
    init: cpt.checkpoint,
    optimizer: { lr: 2e-3, warmupSteps: 5, weightDecay: 0.1, clipNorm: 1 },
    architecture: ARCHITECTURE,
    data: { jsonl: split.train, heldOut: split.heldOut },
    epochs: { count: SAMPLE_BUDGET.sftEpochs, config: {} },
  };
  progress(`sft: ${SAMPLE_BUDGET.sftEpochs} epochs on ${split.train}, from ${cpt.checkpoint}`);
  const sft = local(await engine.trainSft(sftSpec));
  await commitCheckpoint(engine.store, sft);
  return { cpt: cpt.checkpoint, sft: sft.checkpoint, cptMetrics: cpt.metrics, sftMetrics: sft.metrics };
}

const REWARD_SETTINGS: PhaseSettings = {
  steps: SAMPLE_BUDGET.rewardSteps,
  batchSize: 16,
  lr: 1e-3,
  architecture: ARCHITECTURE,
  dropout: 0.1,
  weights: { bt: 1, irl: 0.5, cl: 0.1, tau: 0.1, margin: false, center: 0 },
  evalEvery: 25,
};

/** The sample preference pairs' split (as `xyp reward train --sample`), under `dir`. */
async function samplePairs(dir: string) {
  const prepared = await preparePairs([SAMPLE_PREFERENCES], dir, { testFraction: 0.2, seed: 0 }, progress);
  if (prepared.counts.test === 0) throw new Error(`the sample preference pairs have no held-out split (${SAMPLE_PREFERENCES})`);
  return prepared;
}

/** UFRM phase 1 (general pairs) then phase 2 (finance pairs), seed `seed`, committed as `<runId>/reward.train#pretrain-s<seed>` and `#finetune-s<seed>`. */
async function trainSampleReward(engine: LocalEngine, runId: string, seed: number, prepared: Awaited<ReturnType<typeof samplePairs>>) {
  const heldOut = prepared.files.test;
  progress(`reward: phase 1 (pretrain) on ${prepared.lines.pretrain} pairs, ${REWARD_SETTINGS.steps} steps`);
  const pretrain = await trainPhase(engine, engine.store, { runId, instance: `pretrain-s${seed}`, phase: 'pretrain', variant: 'ufrm', seed }, { train: prepared.files.pretrain, heldOut }, REWARD_SETTINGS);
  progress(`reward: phase 2 (finetune) on ${prepared.lines.finetune} pairs, from ${pretrain.checkpoint}`);
  const finetune = await trainPhase(engine, engine.store, { runId, instance: `finetune-s${seed}`, phase: 'finetune', variant: 'ufrm', seed, init: pretrain.checkpoint }, { train: prepared.files.finetune, heldOut }, REWARD_SETTINGS);
  return { model: finetune.checkpoint, phases: [pretrain, finetune] };
}

/** The UFRM alignment rate per subcategory of `model` on the held-out pairs (reward.evaluate's alignment.json under `dir`). */
async function sampleAlignment(engine: LocalEngine, model: string, testFile: string, dir: string): Promise<{ rates: Record<string, number>; file: string }> {
  const records = await readRecords(testFile);
  const report = await writeAlignmentReport(await alignmentOf(engine, [{ model, variant: 'ufrm' }], records, progress), dir);
  return { rates: alignmentRates(report.json, 'ufrm'), file: report.files[0] };
}

// ---------------------------------------------------------------------------------------------
// Commands

interface LoopOptions extends JudgeOptions {
  sample?: boolean;
  policy?: string;
  reward?: string;
  alignment?: string;
  alignmentVariant: string;
  prompts?: string;
  evalPrompts?: string;
  human?: string;
  maxRounds: string;
  seed: string;
  ppoRounds?: string;
  runId?: string;
  out?: string;
  json?: boolean;
}

interface CiFilterOptions {
  policy: string;
  reward: string;
  prompts: string;
  samples?: string;
  maxTokens?: string;
  temperature?: string;
  minStd?: string;
  minStdQuantile?: string;
  upper?: string;
  upperQuantile?: string;
  lower?: string;
  lowerQuantile?: string;
  keepFraction?: string;
  subdomainPrefix?: string;
  klStart?: string;
  seed?: string;
  out?: string;
  json?: boolean;
}

interface EvaluateOptions extends JudgeOptions {
  policy: string;
  baseline: string;
  reward: string;
  prompts: string;
  human?: string;
  subdomainPrefix?: string;
  maxTokens?: string;
  tieMargin?: string;
  seed?: string;
  out?: string;
  json?: boolean;
}

interface ImproveOptions {
  evaluation: string;
  ratios: string;
  alignment: string;
  alignmentVariant: string;
  history?: string;
  round: string;
  maxRounds?: string;
  out?: string;
  json?: boolean;
}

interface PpoOptions {
  policy: string;
  reference: string;
  reward: string;
  prompts: string;
  ratios: string;
  rounds?: string;
  promptsPerRound?: string;
  samplesPerPrompt?: string;
  maxTokens?: string;
  maxKl?: string;
  seed?: string;
  runId?: string;
  instance: string;
  out?: string;
  json?: boolean;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(1)}%`);

export function registerRlhf(program: Command): void {
  const rlhf = program.command('rlhf').description('PEI-RLHF on the local engine: the CI filter, PPO rounds, evaluation against SFT and the PEI grid, without the platform');

  withJudgeOptions(rlhf
    .command('loop'))
    .description('The recipe\'s loop in process: rlhf.ci-filter, then rounds of rlhf.ppo → rlhf.evaluate → rlhf.improve until the first stop decision; every artifact to --out')
    .option('--sample', 'train what is not given on the bundled samples: the policy (CPT then SFT) unless --policy, the UFRM reward model unless --reward; prompts from the SFT sample\'s split')
    .option('--policy <id>', 'the SFT policy checkpoint (ID or directory)')
    .option('--reward <id>', 'the UFRM reward model checkpoint')
    .option('--alignment <file>', 'alignment.json of `xyp reward evaluate`/reward.evaluate (default with --sample: the reward model on the sample\'s held-out pairs)')
    .option('--alignment-variant <name>', 'the variant of --alignment whose rates tier the RM axis', 'ufrm')
    .option('--prompts <file>', 'prompts of the CI filter (default with --sample: the SFT sample\'s train split)')
    .option('--eval-prompts <file>', 'held-out prompts with reference answers (default with --sample: the SFT sample\'s held-out split)')
    .option('--human <file>', 'annotators\' verdicts, JSONL {id, verdict}, for every round\'s evaluation')
    .option('--max-rounds <n>', 'PEI rounds at most', '3')
    .option('--ppo-rounds <n>', 'PPO rounds per PEI round (default: rlhf.ppo\'s, 6)')
    .option('--seed <n>', 'seed of every stage (and of the --sample training)', '1')
    .option('--run-id <id>', 'run id of the checkpoints (default: rlhf-<time>-<random>)')
    .option('--out <dir>', 'where the artifacts go (default: .xyp/rlhf/<runId>)')
    .option('--json', 'print one JSON object')
    .action(async (o: LoopOptions) => {
      try {
        const start = Date.now();
        const maxRounds = positiveInt('max-rounds', o.maxRounds);
        const seed = intAtLeast('seed', o.seed, 0);
        const ppoRounds = o.ppoRounds === undefined ? undefined : positiveInt('ppo-rounds', o.ppoRounds);
        if (!o.sample) {
          if (!o.policy) throw new Error('--policy: required without --sample');
          if (!o.reward) throw new Error('--reward: required without --sample');
          if (!o.alignment) throw new Error('--alignment: required without --sample');
          if (!o.prompts) throw new Error('--prompts: required without --sample');
          if (!o.evalPrompts) throw new Error('--eval-prompts: required without --sample');
        }
        const ci = ciFilterSettings({ seed });
        const judge = judgeSettings(o);
        const ev = evaluateSettings({ seed, ...judge.settings });
        const im = improveSettings({ maxRounds, alignmentVariant: o.alignmentVariant });
        // PPO stops at the same KL bound the evaluation checks.
        const pp = ppoSettings({ seed, maxKl: ev.maxKl, ...(ppoRounds ? { rounds: ppoRounds } : {}) });
        // Files given are checked before anything trains.
        const given = {
          prompts: o.prompts ? await promptsFile('prompts', o.prompts, ci.subdomainPrefix) : undefined,
          evalPrompts: o.evalPrompts ? await promptsFile('eval-prompts', o.evalPrompts, ev.subdomainPrefix) : undefined,
          alignment: o.alignment ? await alignmentFile('alignment', o.alignment, im.alignmentVariant) : undefined,
          human: o.human ? parseHumanVerdicts(await readFile(existingFile('human', o.human), 'utf8'), `--human ${o.human}`) : undefined,
        };
        const runId = o.runId ?? newRunId('rlhf');
        const out = resolve(o.out ?? join('.xyp', 'rlhf', runId));
        await mkdir(out, { recursive: true });
        const store = configuredStore();
        const engine = engineFor(store);
        const trained: Record<string, unknown> = {};

        let split: Awaited<ReturnType<typeof sampleSftSplit>> | undefined;
        if (o.sample && (!o.policy || !o.prompts || !o.evalPrompts)) split = await sampleSftSplit(runId);
        let policy = o.policy;
        if (!policy) {
          const p = await trainSamplePolicy(engine, runId, seed, split as NonNullable<typeof split>);
          policy = p.sft;
          trained.policy = { cpt: p.cpt, sft: p.sft, budget: `cpt ${SAMPLE_BUDGET.cptSteps} steps in ${SAMPLE_BUDGET.cptStages} mixture stages, sft ${SAMPLE_BUDGET.sftEpochs} epochs (xyp train sft default: 3)`, cptFinalLoss: p.cptMetrics.finalLoss, sftSteps: p.sftMetrics.steps };
          progress(`policy: ${p.cpt} → ${p.sft}`);
        }
        let reward = o.reward;
        let alignment = given.alignment;
        let alignmentSource = o.alignment ? resolve(o.alignment) : undefined;
        if (!reward || !alignment) {
          const prepared = await samplePairs(join(out, 'reward', 'pairs'));
          if (!reward) {
            const r = await trainSampleReward(engine, runId, seed, prepared);
            reward = r.model;
            trained.reward = { model: r.model, phases: r.phases.map((p) => ({ phase: p.phase, checkpoint: p.checkpoint, pairs: p.pairs, heldOutAccuracyAfter: p.metrics.heldOutAccuracyAfter })), budget: `${REWARD_SETTINGS.steps} steps per phase, ${SAMPLE_BUDGET.rewardSeeds} seed` };
          }
          progress(`alignment: ${reward} on ${prepared.counts.test} held-out pairs`);
          const a = await sampleAlignment(engine, reward, prepared.files.test, join(out, 'reward', 'report'));
          alignment = a.rates;
          alignmentSource = a.file;
        }
        const promptsSource = o.prompts ? resolve(o.prompts) : (split as NonNullable<typeof split>).train;
        const evalSource = o.evalPrompts ? resolve(o.evalPrompts) : (split as NonNullable<typeof split>).heldOut;
        const prompts = given.prompts ?? (await readRlhfPrompts(promptsSource, { subdomainPrefix: ci.subdomainPrefix }));
        const evalPrompts = given.evalPrompts ?? (await readRlhfPrompts(evalSource, { subdomainPrefix: ev.subdomainPrefix }));

        const result = await runPeiLoop(engine, {
          runId,
          policy,
          reward,
          prompts,
          promptsSource,
          evalPrompts,
          evalPromptsSource: evalSource,
          human: given.human,
          judgeApiKey: judge.apiKey,
          alignment,
          ciFilter: ci,
          ppo: pp,
          evaluate: ev,
          improve: im,
          backend: configuredBackend(),
          workDir: join(out, 'work'),
          put: async (stage, files) => {
            await writeStage(out, stage, files);
          },
          commit: (job) => commitCheckpoint(store, job),
          onProgress: progress,
        });
        for (const [name, body] of Object.entries(result.files)) await writeFile(join(out, name), body);
        const summary = {
          runId,
          policy,
          reward,
          finalPolicy: result.finalPolicy,
          ...(Object.keys(trained).length > 0 ? { trained } : {}),
          prompts: { ciFilter: promptsSource, evaluate: evalSource, ciFilterPrompts: prompts.prompts.length, kept: result.ciFilter.kept, heldOut: evalPrompts.prompts.length },
          alignment: { source: alignmentSource, rates: alignment },
          ciFilter: { kept: result.ciFilter.kept, prompts: result.ciFilter.prompts, droppedByRule: result.ciFilter.droppedByRule, ratios: result.ciFilter.ratios, kl: result.ciFilter.kl },
          rounds: result.rounds,
          stopReason: result.stopReason,
          out,
          files: { markdown: join(out, 'loop.md'), html: join(out, 'loop.html'), stages: result.stages.map((s) => s.stage) },
          seconds: since(start),
        };
        printResult(summary, o.json === true, (s: typeof summary) =>
          [
            `PEI-RLHF ${s.runId}: policy ${s.policy}, reward ${s.reward}; ${s.rounds.length} round(s), ${s.seconds} s`,
            ...s.rounds.map((r) => `  round ${r.round}: KL ${r.kl} → ${r.nextKl}, W/T/L ${r.winTieLoss.win}/${r.winTieLoss.tie}/${r.winTieLoss.loss}, net win ${pct(r.winTieLoss.netWinRate)}, UFRM gain ${r.ufrmGain}, PPO reward ${r.ppo.firstMeanReward} → ${r.ppo.lastMeanReward}: ${r.decision.reason}`),
            `stopped: ${s.stopReason}`,
            `artifacts: ${s.out} (loop.md, loop.html)`,
          ].join('\n'),
        );
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });

  rlhf
    .command('ci-filter')
    .description('rlhf.ci-filter: n UFRM-scored samples of the policy per prompt; low-std and out-of-range prompts dropped, a std-weighted sample kept; every prompt accounted for')
    .requiredOption('--policy <id>', 'the SFT policy checkpoint')
    .requiredOption('--reward <id>', 'the UFRM reward model checkpoint')
    .requiredOption('--prompts <file>', 'prompts JSONL: {prompt, subdomain, reference?} or SFT chat lines {messages, category}')
    .option('--samples <n>', 'responses per prompt (default 8)')
    .option('--max-tokens <n>', 'tokens per response (default 32)')
    .option('--temperature <x>', 'sampling temperature (default 1)')
    .option('--min-std <x>', 'rule 1: drop prompts whose score std is below x')
    .option('--min-std-quantile <q>', 'rule 1: … below this quantile of the prompts\' stds (default 0.1)')
    .option('--upper <x>', 'rule 2: drop prompts whose mean score is above x')
    .option('--upper-quantile <q>', 'rule 2: … above this quantile of the means')
    .option('--lower <x>', 'rule 2: drop prompts whose mean score is below x')
    .option('--lower-quantile <q>', 'rule 2: … below this quantile of the means')
    .option('--keep-fraction <f>', 'share of the surviving prompts kept (default 0.8)')
    .option('--subdomain-prefix <p>', 'keep only subdomains starting with this; "" for all (default finance.)')
    .option('--kl-start <x>', 'the KL of the first PPO round written to ratios.json (default 0.1)')
    .option('--seed <n>', 'seed (default 1)')
    .option('--out <dir>', 'where the files go (default: .xyp/rlhf/<runId>/rlhf.ci-filter)')
    .option('--json', 'print one JSON object')
    .action(async (o: CiFilterOptions) => {
      try {
        const start = Date.now();
        const settings = ciFilterSettings({
          samples: o.samples === undefined ? undefined : atLeastTwo('samples', o.samples),
          maxTokens: o.maxTokens === undefined ? undefined : positiveInt('max-tokens', o.maxTokens),
          temperature: o.temperature === undefined ? undefined : positiveNumber('temperature', o.temperature),
          minStd: threshold('min-std', o.minStd, o.minStdQuantile),
          upper: threshold('upper', o.upper, o.upperQuantile),
          lower: threshold('lower', o.lower, o.lowerQuantile),
          keepFraction: o.keepFraction === undefined ? undefined : share('keep-fraction', o.keepFraction),
          subdomainPrefix: o.subdomainPrefix,
          klStart: o.klStart === undefined ? undefined : nonNegative('kl-start', o.klStart),
          seed: o.seed === undefined ? undefined : intAtLeast('seed', o.seed, 0),
        });
        const read = await promptsFile('prompts', o.prompts, settings.subdomainPrefix);
        const out = resolve(o.out ?? join('.xyp', 'rlhf', newRunId('rlhf'), 'rlhf.ci-filter'));
        const engine = engineFor(configuredStore());
        const r = await ciFilterStage(engine, {
          policy: o.policy,
          reward: o.reward,
          read,
          source: `--prompts ${o.prompts}`,
          settings,
          backend: configuredBackend(),
          onProgress: (done, total, what) => progress(`rlhf.ci-filter: ${done}/${total} ${what}`),
        });
        await writeStage(out, '.', r.files);
        const result = {
          lines: r.result.lines,
          prompts: r.result.prompts,
          skipped: read.skipped,
          rejected: read.rejects,
          kept: r.result.kept,
          dropped: r.dropped.length,
          droppedByRule: r.result.droppedByRule,
          droppedPrompts: r.dropped.map((d) => ({ id: d.id, subdomain: d.subdomain, rule: d.rule })),
          bySubdomain: r.result.bySubdomain,
          ratios: r.result.ratios,
          kl: r.result.kl,
          thresholds: r.result.thresholds,
          out,
          seconds: since(start),
        };
        printResult(result, o.json === true, (x: typeof result) =>
          [
            `${x.lines} lines: ${x.prompts} prompts, ${x.rejected.length} rejected, ${x.skipped} of other subdomains; kept ${x.kept}, dropped ${x.dropped} (${Object.entries(x.droppedByRule).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})`,
            ...x.rejected.slice(0, 10).map((j) => `  line ${j.line}: ${j.reason}`),
            `files: ${x.out}`,
          ].join('\n'),
        );
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });

  rlhf
    .command('ppo')
    .description('rlhf.ppo: PPO from --policy against --reference, scored by --reward, on --prompts drawn by the ratios of --ratios with its KL; commits the checkpoint')
    .requiredOption('--policy <id>', 'the policy to improve')
    .requiredOption('--reference <id>', 'the frozen reference of the KL (the SFT model)')
    .requiredOption('--reward <id>', 'the UFRM reward model')
    .requiredOption('--prompts <file>', 'the filtered prompts (rlhf.ci-filter/prompts.jsonl)')
    .requiredOption('--ratios <file>', 'ratios.json {ratios: {subdomain: share}, kl}')
    .option('--rounds <n>', 'PPO rounds (default 6)')
    .option('--prompts-per-round <n>', 'prompts per PPO round (default 8)')
    .option('--samples-per-prompt <n>', 'rollouts per prompt (default 4)')
    .option('--max-tokens <n>', 'tokens per rollout (default 32)')
    .option('--max-kl <x>', 'the KL bound, nats per response: PPO stops at the last round whose rollouts were within it (default 5)')
    .option('--seed <n>', 'seed (default 1)')
    .option('--run-id <id>', 'run id of the checkpoint (default: rlhf-<time>-<random>)')
    .option('--instance <name>', 'stage instance: the checkpoint is <runId>/rlhf.ppo#<instance>', 'round-1')
    .option('--out <dir>', 'where the files go (default: .xyp/rlhf/<runId>/rlhf.ppo#<instance>)')
    .option('--json', 'print one JSON object')
    .action(async (o: PpoOptions) => {
      try {
        const start = Date.now();
        const settings = ppoSettings({
          rounds: o.rounds === undefined ? undefined : positiveInt('rounds', o.rounds),
          promptsPerRound: o.promptsPerRound === undefined ? undefined : positiveInt('prompts-per-round', o.promptsPerRound),
          samplesPerPrompt: o.samplesPerPrompt === undefined ? undefined : positiveInt('samples-per-prompt', o.samplesPerPrompt),
          maxTokens: o.maxTokens === undefined ? undefined : positiveInt('max-tokens', o.maxTokens),
          maxKl: o.maxKl === undefined ? undefined : positiveNumber('max-kl', o.maxKl),
          seed: o.seed === undefined ? undefined : intAtLeast('seed', o.seed, 0),
        });
        const used = await ratiosFile('ratios', o.ratios);
        const read = await promptsFile('prompts', o.prompts, '');
        if (read.prompts.length === 0) throw new Error(`--prompts ${o.prompts}: no prompt (${read.lines} lines, ${read.rejects.length} rejected)`);
        const runId = o.runId ?? newRunId('rlhf');
        const stage = instanceId('rlhf.ppo', o.instance);
        const out = resolve(o.out ?? join('.xyp', 'rlhf', runId, stage));
        await mkdir(out, { recursive: true });
        const store = configuredStore();
        const engine = engineFor(store);
        const r = await ppoStage(engine, { runId, stage, policy: o.policy, reference: o.reference, rewardModel: o.reward, prompts: read.prompts, ratios: used.ratios, kl: used.kl, settings, workDir: out }).catch((error: unknown) => {
          throw error instanceof Error && /ratios: /.test(error.message) ? new Error(`--ratios ${o.ratios}: ${error.message}`, { cause: error }) : error;
        });
        await commitCheckpoint(store, r.job);
        await writeStage(out, '.', r.files);
        const m = r.job.metrics;
        const result = { checkpoint: r.job.checkpoint, metrics: m, ratios: used.ratios, kl: used.kl, draws: r.draws, ppo: { firstMeanReward: m.firstMeanReward, lastMeanReward: m.lastMeanReward, lastMeanKl: m.lastMeanKl }, out, seconds: since(start) };
        printResult(result, o.json === true, (x: typeof result) => `checkpoint ${x.checkpoint}: ${m.rounds} PPO rounds, reward ${m.firstMeanReward.toFixed(4)} → ${m.lastMeanReward.toFixed(4)}, KL ${m.lastMeanKl.toFixed(4)}; files ${x.out}`);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });

  withJudgeOptions(rlhf
    .command('evaluate'))
    .description('rlhf.evaluate: --policy against --baseline on held-out prompts per subdomain: win/tie/loss in both orders (reference judge; --human first), UFRM gain, KL')
    .requiredOption('--policy <id>', 'the policy (a PPO round)')
    .requiredOption('--baseline <id>', 'the SFT model')
    .requiredOption('--reward <id>', 'the UFRM reward model, for the mean scores')
    .requiredOption('--prompts <file>', 'held-out prompts with reference answers (e.g. an SFT held-out.jsonl)')
    .option('--human <file>', 'annotators\' verdicts, JSONL {id, verdict: win|tie|loss}')
    .option('--subdomain-prefix <p>', 'keep only subdomains starting with this; "" for all (default finance.)')
    .option('--max-tokens <n>', 'tokens per response (default 48)')
    .option('--tie-margin <x>', 'the reference judge\'s tie band on ΔF1 (default 0.02)')
    .option('--seed <n>', 'seed (default 1)')
    .option('--out <dir>', 'where the files go (default: .xyp/rlhf/<runId>/rlhf.evaluate)')
    .option('--json', 'print one JSON object')
    .action(async (o: EvaluateOptions) => {
      try {
        const start = Date.now();
        const judge = judgeSettings(o);
        const settings = evaluateSettings({
          ...judge.settings,
          subdomainPrefix: o.subdomainPrefix,
          maxTokens: o.maxTokens === undefined ? undefined : positiveInt('max-tokens', o.maxTokens),
          tieMargin: o.tieMargin === undefined ? undefined : fraction('tie-margin', o.tieMargin),
          seed: o.seed === undefined ? undefined : intAtLeast('seed', o.seed, 0),
        });
        const read = await promptsFile('prompts', o.prompts, settings.subdomainPrefix);
        const human = o.human ? parseHumanVerdicts(await readFile(existingFile('human', o.human), 'utf8'), `--human ${o.human}`) : undefined;
        const out = resolve(o.out ?? join('.xyp', 'rlhf', newRunId('rlhf'), 'rlhf.evaluate'));
        const engine = engineFor(configuredStore());
        const r = await evaluateStage(engine, { policy: o.policy, baseline: o.baseline, reward: o.reward, read, source: `--prompts ${o.prompts}`, human, settings, judgeApiKey: judge.apiKey, backend: configuredBackend(), onProgress: (done, total, what) => progress(`rlhf.evaluate: ${done}/${total} ${what}`) });
        await writeStage(out, '.', r.files);
        const result = { ...r.result, rejected: read.rejects, skipped: read.skipped, out, seconds: since(start) };
        const ov = r.result.overall;
        printResult(result, o.json === true, () => `judge ${r.result.judge}: W/T/L ${ov.win}/${ov.tie}/${ov.loss} (${ov.skip} skipped), net win ${pct(ov.netWinRate)}, UFRM gain ${ov.scoreGain.toFixed(4)}, KL ${ov.kl.toFixed(3)}; files ${out}`);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });

  rlhf
    .command('improve')
    .description('rlhf.improve: the PEI grid over the evaluation\'s gains and the UFRM alignment rates moves each subdomain\'s ratio, lowers the KL, and decides another round')
    .requiredOption('--evaluation <file>', 'evaluation.json of rlhf.evaluate')
    .requiredOption('--ratios <file>', 'ratios.json the round trained with (rlhf.ppo/ratios.json)')
    .requiredOption('--alignment <file>', 'alignment.json of reward.evaluate / `xyp reward evaluate`')
    .option('--alignment-variant <name>', 'the variant whose rates tier the RM axis', 'ufrm')
    .option('--history <file>', 'history.json of the loop so far (default: round 0 from --ratios)')
    .option('--round <n>', 'the round number', '1')
    .option('--max-rounds <n>', 'the loop\'s round limit (default 3)')
    .option('--out <dir>', 'where the files go (default: .xyp/rlhf/<runId>/rlhf.improve#round-<n>)')
    .option('--json', 'print one JSON object')
    .action(async (o: ImproveOptions) => {
      try {
        const round = positiveInt('round', o.round);
        const settings = improveSettings({ alignmentVariant: o.alignmentVariant, maxRounds: o.maxRounds === undefined ? undefined : positiveInt('max-rounds', o.maxRounds) });
        const evaluation = (jsonFile('evaluation', o.evaluation)) as { bySubdomain?: unknown; overall?: unknown };
        if (!evaluation || typeof evaluation.bySubdomain !== 'object' || typeof evaluation.overall !== 'object') throw new Error(`--evaluation ${o.evaluation}: no bySubdomain/overall (not an rlhf.evaluate evaluation.json)`);
        const used = await ratiosFile('ratios', o.ratios);
        const alignment = await alignmentFile('alignment', o.alignment, settings.alignmentVariant);
        let history: PeiHistory = [{ round: 0, ratios: used.ratios, kl: used.kl }];
        if (o.history) {
          const h = jsonFile('history', o.history);
          if (!Array.isArray(h)) throw new Error(`--history ${o.history}: not a JSON array (history.json of rlhf.ci-filter or rlhf.improve)`);
          history = h as PeiHistory;
        }
        let r;
        try {
          r = improveStage({ round, evaluation: evaluation as Parameters<typeof improveStage>[0]['evaluation'], used, alignment, history, settings });
        } catch (error) {
          throw new Error(`--evaluation/--ratios/--alignment: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
        const out = resolve(o.out ?? join('.xyp', 'rlhf', newRunId('rlhf'), instanceId('rlhf.improve', `round-${round}`)));
        await writeStage(out, '.', r.files);
        const result = { ...r.result, notes: r.out.notes, out };
        printResult(result, o.json === true, (x: typeof result) =>
          [`round ${x.round}: ${x.decision.reason}; next KL ${x.kl}`, ...x.moves.map((m) => `  ${m.subdomain.padEnd(30)} ${m.ppoTier}/${m.rmTier} ${m.action.padEnd(9)} ${m.before.toFixed(4)} → ${m.after.toFixed(4)}`), `files: ${x.out}`].join('\n'),
        );
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
