import { Command } from 'commander';
import { registerRunCommands } from './commands/run';
import { registerCorpusBucket } from './commands/corpus-bucket';
import { registerCorpusMix } from './commands/corpus-mix';
import { registerEval } from './commands/eval';
import { registerCorpusSplit } from './commands/corpus-split';
import { registerBenchCorpus } from './commands/bench-corpus';
import { registerBenchCpt } from './commands/bench-cpt';
import { registerBenchEngine } from './commands/bench-engine';
import { registerBenchPacking } from './commands/bench-packing';
import { registerBenchQueue } from './commands/bench-queue';
import { registerBenchReward } from './commands/bench-reward';
import { registerBenchRlhf } from './commands/bench-rlhf';
import { registerBenchSynth } from './commands/bench-synth';
import { registerRewardScore } from './commands/reward-score';
import { registerRlhf } from './commands/rlhf';
import { registerReward } from './commands/reward';
import { registerServe } from './commands/serve';
import { registerSynth } from './commands/synth';
import { registerTrain } from './commands/train';
import { registerUp } from './commands/up';
import { exitWithError } from './cli-output';

const program = new Command('xyp')
  .description('XuanYuan Pipeline: run the XuanYuan3 post-training recipe, or one stage of it')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

registerUp(program);
registerRunCommands(program.command('run').description('Submit, follow and cancel pipeline runs on the control plane (gRPC)'));
const corpus = program.command('corpus').description('Continued-pretraining data: bucket packing and the data mixture');
registerCorpusBucket(corpus);
registerCorpusMix(corpus);
registerCorpusSplit(corpus);
const bench = program.command('bench').description('Benchmarks that print figures measured side by side in one run');
registerBenchCorpus(bench);
registerBenchCpt(bench);
registerBenchRlhf(bench);
registerBenchEngine(bench);
registerBenchPacking(bench);
registerBenchQueue(bench);
registerBenchReward(bench);
registerBenchSynth(bench);
const reward = program.command('reward').description('The UFRM reward model: train in two phases, evaluate alignment per subcategory, score');
registerReward(reward);
registerRewardScore(reward);
registerEval(program);
registerRlhf(program);
registerServe(program);
registerSynth(program);
registerTrain(program);

program.parseAsync(process.argv).catch(exitWithError);
