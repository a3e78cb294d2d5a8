import type { Command } from 'commander';
import { exitWithError, printResult, progress } from '../cli-output';
import { positiveInt as int } from '../flags';
import { configuredBackend } from '../engine-runtime';
import { runCptBench, type CptBenchReport } from '../bench/cpt-bench';

interface Options {
  shards?: string;
  layers: string;
  width: string;
  heads: string;
  context: string;
  batch: string;
  steps: string;
  blocks: string;
  json?: boolean;
}

function human(r: CptBenchReport): string {
  const m = r.model;
  return [
    `CPT ${m.layers}L/${m.width}w/${m.heads}h/ctx ${m.context}/batch ${m.batch}, ${m.params} params, ${r.backend}`,
    `shards ${r.shards.source}: ${r.shards.categories} categories, ${r.shards.trainRows} training rows, ${r.shards.tokens} tokens`,
    `raw training step (one prebuilt batch): ${r.rawMedian} tok/s (${r.rawMsPerStep} ms/step), blocks ${r.rawTokensPerSecond.join(', ')}`,
    `CPT stage loop (shards, sampler plan, masks, per-category loss): ${r.stageMedian} tok/s, blocks ${r.stageTokensPerSecond.join(', ')}`,
    `stage ÷ raw: ${r.fraction} (target ≥ 0.9); the data path alone takes ${r.dataPathMsPerStep} ms a step`,
  ].join('\n');
}

/** `xyp bench cpt`: CPT tokens/s through the stage's data path as a fraction of the raw training step. */
export function registerBenchCpt(bench: Command): void {
  bench
    .command('cpt')
    .description("CPT tokens/s through the real stage loop (category rows from shards, the mixture sampler's plan, document masks) as a fraction of the engine's raw training step on the same model")
    .option('--shards <dir>', 'output directory of `xyp corpus bucket --tokenizer byte` (default: the bundled sample, bucketed on first use)')
    .option('--layers <n>', 'transformer layers', '2')
    .option('--width <n>', 'model width', '64')
    .option('--heads <n>', 'attention heads', '4')
    .option('--context <n>', 'model context', '256')
    .option('--batch <n>', 'rows per step', '8')
    .option('--steps <n>', 'steps per block and side', '20')
    .option('--blocks <n>', 'interleaved blocks per side', '3')
    .option('--json', 'print one JSON object')
    .action(async (o: Options) => {
      try {
        const report = await runCptBench({
          shards: o.shards,
          layers: int('layers', o.layers),
          width: int('width', o.width),
          heads: int('heads', o.heads),
          context: int('context', o.context),
          batch: int('batch', o.batch),
          steps: int('steps', o.steps),
          blocks: int('blocks', o.blocks),
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
