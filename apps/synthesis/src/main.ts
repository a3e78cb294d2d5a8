import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS, engineBackendOptions } from '@xyp/config';
import {
  SYNTHESIS_ENGINE_BACKEND,
  SYNTHESIS_REWARD_URL,
  SynthesisAnalysisWorker,
  SynthesisEnsembleWorker,
  SynthesisEvolveWorker,
  SynthesisMergeWorker,
  SynthesisSelfQaWorker,
} from './synthesis.workers';

/**
 * The synthesis service: the workers of the SFT data synthesis stages (synthesis.selfqa, .evolve,
 * .analysis, .ensemble and the join synthesis.merge). Each generator job serves the run's checkpoints
 * it is given in process over the OpenAI API and calls them, and any registry endpoints, through the
 * LLM gateway (`@xyp/llm`), whose response cache lives in this service's Redis.
 */
main({
  name: 'synthesis',
  env: SERVICE_ENVS.synthesis,
  module: (env) =>
    PlatformModule.forRoot(env, {
      workers: ['synthesis.selfqa', 'synthesis.evolve', 'synthesis.analysis', 'synthesis.ensemble', 'synthesis.merge'],
      providers: [
        { provide: SYNTHESIS_ENGINE_BACKEND, useValue: engineBackendOptions(env) },
        { provide: SYNTHESIS_REWARD_URL, useValue: env.XYP_SYNTHESIS_REWARD_URL },
        SynthesisSelfQaWorker,
        SynthesisEvolveWorker,
        SynthesisAnalysisWorker,
        SynthesisEnsembleWorker,
        SynthesisMergeWorker,
      ],
    }),
  httpPort: (env) => env.XYP_SYNTHESIS_HTTP_PORT,
});
