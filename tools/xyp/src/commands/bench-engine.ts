import type { Command } from 'commander';
import { exitWithError, printResult, progress } from '../cli-output';
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
  json?: boolean;
}

function int(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
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
        `${m.trainTokensPerSecond} train tok/s (median step ${m.trainTokensPerSecondMedian}), ${m.sampleTokensPerSecond} sample tok/s, peak RSS ${m.peakRssMb} MB`,
    );
    const t = m.torch;
    if (t) {
      lines.push(
        `  PyTorch ${t.version} (${t.threads} thread(s)), same steps interleaved: raw ${t.rawMatmulGflops} GFLOP/s, train ${t.torchTrainGflops} GFLOP/s ` +
          `(${t.torchFractionOfRaw} of raw), ${t.torchTrainTokensPerSecond} train tok/s (median step ${t.torchTrainTokensPerSecondMedian}); ` +
          `engine/PyTorch ${t.ratio} (medians ${t.ratioMedian})`,
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
    .option('--torch-threads <n>', 'torch.set_num_threads for --compare-torch (default: the engine threads)')
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
          onProgress: progress,
        });
        printResult(report, o.json === true, human);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
