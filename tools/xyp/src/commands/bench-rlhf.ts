import type { Command } from 'commander';
import { exitWithError, printResult, progress } from '../cli-output';
import { intAtLeast, positiveInt as int, positiveNumber as num } from '../flags';
import { configuredBackend } from '../engine-runtime';
import { runRlhfBench, type RlhfBenchReport } from '../bench/rlhf-bench';

interface Options {
  sft?: string;
  layers: string;
  width: string;
  heads: string;
  context: string;
  prompts: string;
  n: string;
  maxTokens: string;
  temperature: string;
  epochs: string;
  minibatches: string;
  blocks: string;
  klEstimator: string;
  rewardLatencyMs: string;
  json?: boolean;
}

function human(r: RlhfBenchReport): string {
  const m = r.model;
  const s = r.rolloutShares;
  const l = r.lastRound;
  return [
    `RLHF ${m.layers}L/${m.width}w/${m.heads}h/ctx ${m.context}, ${m.params} params, ${r.backend}, ${r.decoder} decoder`,
    `prompts ${r.prompts.source}: ${r.prompts.count} × n ${r.samplesPerPrompt} = ${r.rollouts} rollouts of ${r.maxTokens} tokens (prompt ${r.prompts.meanTokens} tokens on average), temperature ${r.temperature}${r.rewardLatencyMs ? `, reward latency ${r.rewardLatencyMs} ms` : ''}`,
    `plain sampling (generateAsync):            ${r.plainMedian} tok/s, blocks ${r.blocks.map((b) => b.plainTokensPerSecond).join(', ')}`,
    `PPO rollout (sample, score, logp/ref/values): ${r.rolloutMedian} tok/s, blocks ${r.blocks.map((b) => b.rolloutTokensPerSecond).join(', ')}`,
    `  of the rollout phase: sampling ${s.sampling}, reward ${s.scoring}, packing + the reference's pass + GAE ${s.experience}`,
    `PPO rollout, reference streamed:           ${Math.round(r.streamedRatio * r.plainMedian)} tok/s (÷ plain ${r.streamedRatio}), blocks ${r.blocks.map((b) => b.streamedTokensPerSecond).join(', ')}`,
    `PPO updates (${r.epochs} epoch(s) × ${r.minibatches} minibatches): ${r.updateMedian} response tok/s, blocks ${r.blocks.map((b) => b.updateTokensPerSecond).join(', ')}`,
    `rollout ÷ plain sampling: ${r.ratio} (medians; block by block ${r.blockRatioMedian}; target ≥ 0.8)`,
    `last round (${r.klEstimator}): reward ${l.meanReward}, KL ${l.meanKl}, entropy ${l.entropy}, clip fraction ${l.clipFraction}, policy loss ${l.policyLoss}, value loss ${l.valueLoss}`,
  ].join('\n');
}

/** `xyp bench rlhf`: PPO rollout tokens/s against the engine's plain sampling on the same prompts, and PPO update tokens/s. */
export function registerBenchRlhf(bench: Command): void {
  bench
    .command('rlhf')
    .description("PPO rollout tokens/s (sampling, reward, old/ref log-probs and values) as a fraction of the engine's plain sampling on the same prompts, and PPO update tokens/s, on one fresh byte model")
    .option('--sft <jsonl>', 'SFT JSONL whose first user turns are the prompts (default: data/sample/sft.jsonl; synthetic prompts when absent)')
    .option('--layers <n>', 'transformer layers', '2')
    .option('--width <n>', 'model width', '64')
    .option('--heads <n>', 'attention heads', '4')
    .option('--context <n>', 'model context', '256')
    .option('--prompts <n>', 'prompts per round', '8')
    .option('--n <n>', 'samples per prompt', '4')
    .option('--max-tokens <n>', 'tokens per response', '32')
    .option('--temperature <x>', 'sampling temperature', '1')
    .option('--epochs <n>', 'PPO epochs per round', '1')
    .option('--minibatches <n>', 'PPO minibatches per epoch', '2')
    .option('--blocks <n>', 'interleaved blocks (plain sampling, a PPO round, a PPO round with the reference streamed)', '15')
    .option('--kl-estimator <name>', 'k1 or k3', 'k1')
    .option('--reward-latency-ms <n>', 'delay every reward call by n ms, as a reward service\'s round trip (the reference pass runs while it is pending)', '0')
    .option('--json', 'print one JSON object')
    .action(async (o: Options) => {
      try {
        if (o.klEstimator !== 'k1' && o.klEstimator !== 'k3') throw new Error(`--kl-estimator must be k1 or k3, got ${o.klEstimator}`);
        const report = await runRlhfBench({
          sft: o.sft,
          layers: int('layers', o.layers),
          width: int('width', o.width),
          heads: int('heads', o.heads),
          context: int('context', o.context),
          prompts: int('prompts', o.prompts),
          samplesPerPrompt: int('n', o.n),
          maxTokens: int('max-tokens', o.maxTokens),
          temperature: num('temperature', o.temperature),
          epochs: int('epochs', o.epochs),
          minibatches: int('minibatches', o.minibatches),
          blocks: int('blocks', o.blocks),
          klEstimator: o.klEstimator,
          rewardLatencyMs: intAtLeast('reward-latency-ms', o.rewardLatencyMs, 0),
          backend: configuredBackend(),
          onProgress: progress,
        });
        printResult(report, o.json === true, human);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
