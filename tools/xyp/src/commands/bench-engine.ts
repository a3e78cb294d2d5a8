import type { Command } from 'commander';
import { exitWithError, printResult, progress } from '../cli-output';
import { positiveInt as int } from '../flags';
import { DEFAULT_SIZES, runEngineBench, type EngineBenchReport, type EngineBenchSize } from '../bench/engine';

interface Options {
  layers?: string;
  width?: string;
  heads?: string;
  context?: string;
  batch?: string;
  vocab?: string;
  steps: string;
  warmup: string;
  backend: 'wasm' | 'cpu' | 'auto';
  threads?: string;
  compareTorch?: boolean;
  python?: string;
  torchThreads?: string;
  sampleRounds: string;
  sampleTfjs?: boolean;
  torchSampleThreads: string;
  json?: boolean;
}

function human(report: EngineBenchReport): string {
  const b = report.backend;
  const blas = b.blasThreads ? `, OpenBLAS ${b.blasThreads} thread(s)` : '';
  const lines = [`backend ${b.backend}, matmul ${b.matmul}, ${b.threads} WASM thread(s)${blas}, simd ${b.simd}`, `FLOPs: ${report.flopConvention}`];
  if (b.note) lines.push(`note: ${b.note}`);
  if (report.wasmRawMatmulGflops !== undefined) lines.push(`raw [4096,256]·[256,1024]: ${report.rawMatmulGflops} GFLOP/s native, ${report.wasmRawMatmulGflops} GFLOP/s WASM`);
  if (report.torchNote) lines.push(`torch: ${report.torchNote}`);
  for (const m of report.models) {
    lines.push(
      `${m.name} (${m.layers}L/${m.width}w/${m.heads}h/ctx ${m.context}/batch ${m.batch}/vocab ${m.vocab}, ${m.params} params): ` +
        `raw ${m.rawMatmulGflops} GFLOP/s, train ${m.trainGflops} GFLOP/s (${m.fractionOfRaw} of raw), ` +
        `${m.trainTokensPerSecond} train tok/s (median step ${m.trainTokensPerSecondMedian}), peak RSS ${m.peakRssMb} MB`,
    );
    const tfjs = m.sampleTfjsTokensPerSecond === undefined ? '' : `; TF.js path ${m.sampleTfjsTokensPerSecond} / ${m.sampleTfjsTokensPerSecondBatch64}`;
    lines.push(`  sampling (${m.sampleDecoder} decoder), batch ${m.batch} / 64: ${m.sampleTokensPerSecond} / ${m.sampleTokensPerSecondBatch64} tok/s${tfjs}`);
    const t = m.torch;
    if (t) {
      lines.push(
        `  PyTorch ${t.version} (${t.threads} thread(s)), same steps interleaved: raw ${t.rawMatmulGflops} GFLOP/s, train ${t.torchTrainGflops} GFLOP/s ` +
          `(${t.torchFractionOfRaw} of raw), ${t.torchTrainTokensPerSecond} train tok/s (median step ${t.torchTrainTokensPerSecondMedian}); ` +
          `engine/PyTorch ${t.ratio} (medians ${t.ratioMedian})`,
      );
      const by = (r: Record<string, number>) => Object.entries(r).map(([threads, x]) => `${x} at ${threads} thread(s)`).join(', ');
      lines.push(
        `  PyTorch sampling, batch ${m.batch}: ${by(t.torchSampleTokensPerSecondByThreads)}; batch 64: ${by(t.torchSampleTokensPerSecondBatch64ByThreads)}; ` +
          `engine/PyTorch's best ${t.sampleRatio} / ${t.sampleRatioBatch64}`,
      );
    }
  }
  return lines.join('\n');
}

/** `xyp bench engine`: training and sampling throughput of the local engine (two default sizes, or one given size). */
export function registerBenchEngine(parent: Command): void {
  parent
    .command('engine')
    .description('Local engine throughput: raw matmul, training and sampling rates, peak memory')
    .option('--layers <n>', 'layers (with the other size flags: bench this one model)')
    .option('--width <n>', 'model width')
    .option('--heads <n>', 'attention heads')
    .option('--context <n>', 'context length (tokens per row)')
    .option('--batch <n>', 'rows per step')
    .option('--vocab <n>', 'vocabulary size')
    .option('--steps <n>', 'timed training steps', '4')
    .option('--warmup <n>', 'untimed warm-up steps', '1')
    .option('--backend <name>', 'wasm, cpu or auto', 'auto')
    .option('--threads <n>', 'compute threads: OpenBLAS with the native addon, else WASM (default: XYP_ENGINE_THREADS or the core count)')
    .option('--compare-torch', 'also train the same model with PyTorch on the CPU, steps interleaved (needs python3 with torch)')
    .option('--python <path>', 'Python for --compare-torch (default: XYP_TORCH_PYTHON, python3, /usr/bin/python3)')
    .option('--torch-threads <n>', 'torch.set_num_threads for --compare-torch training (default: the engine threads)')
    .option('--sample-rounds <n>', 'sampling rounds per batch size (batch and 64), the sides in turn', '3')
    .option('--sample-tfjs', "also time sampling on the engine's TF.js decoding path (the path without the native decoder; slow)")
    .option('--torch-sample-threads <list>', 'torch.set_num_threads settings PyTorch samples with, comma-separated', '1,2')
    .option('--json', 'print one JSON object')
    .action(async (o: Options) => {
      try {
        const given = [o.layers, o.width, o.heads, o.context, o.batch, o.vocab];
        let sizes: Record<string, EngineBenchSize> = DEFAULT_SIZES;
        if (given.some((v) => v !== undefined)) {
          const d = DEFAULT_SIZES.base;
          const size: EngineBenchSize = {
            layers: o.layers ? int('layers', o.layers) : d.layers,
            width: o.width ? int('width', o.width) : d.width,
            heads: o.heads ? int('heads', o.heads) : d.heads,
            context: o.context ? int('context', o.context) : d.context,
            batch: o.batch ? int('batch', o.batch) : d.batch,
            vocab: o.vocab ? int('vocab', o.vocab) : d.vocab,
          };
          sizes = { custom: size };
        }
        const report = await runEngineBench(sizes, {
          steps: int('steps', o.steps),
          warmup: Number(o.warmup),
          backend: o.backend,
          threads: o.threads ? int('threads', o.threads) : undefined,
          compareTorch: o.compareTorch === true,
          python: o.python,
          torchThreads: o.torchThreads ? int('torch-threads', o.torchThreads) : undefined,
          sampleRounds: int('sample-rounds', o.sampleRounds),
          sampleTfjs: o.sampleTfjs === true,
          torchSampleThreads: o.torchSampleThreads.split(',').map((t) => int('torch-sample-threads', t.trim())),
          onProgress: progress,
        });
        printResult(report, o.json === true, human);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
