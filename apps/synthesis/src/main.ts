import { main, PlatformModule } from '@xyp/bootstrap';
import type Redis from 'ioredis';
import { SERVICE_ENVS, engineBackendOptions } from '@xyp/config';
import { RedisResponseCache } from '@xyp/llm';
import { QUEUE_SETTINGS, REDIS_CLIENT, type QueueSettings } from '@xyp/queue';
import {
  LLM_CACHE,
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
 * LLM gateway (`@xyp/llm`), whose response cache lives in this service's Redis and whose `xyp_llm_*`
 * metrics go on the service's registry (`METRICS_REGISTRY`), served at `/metrics`.
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
        // Keys hash the model's name, its id (a checkpoint's ID for the embedded models) and the whole request.
        { provide: LLM_CACHE, useFactory: (redis: Redis, queue: QueueSettings) => new RedisResponseCache(redis, { prefix: `${queue.prefix}:llm-cache:` }), inject: [REDIS_CLIENT, QUEUE_SETTINGS] },
        SynthesisSelfQaWorker,
        SynthesisEvolveWorker,
        SynthesisAnalysisWorker,
        SynthesisEnsembleWorker,
        SynthesisMergeWorker,
      ],
    }),
  httpPort: (env) => env.XYP_SYNTHESIS_HTTP_PORT,
});
