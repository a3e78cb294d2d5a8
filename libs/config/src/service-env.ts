import { z } from 'zod';
import { envPort } from './load-config';
import { ClusterEnv } from './cluster-env';
import { EngineEnv } from './engine-env';
import { PlatformEnv } from './platform-config';

/**
 * The environment of each service: what every service shares plus its own ports.
 * Kept together so the launcher, the Kubernetes manifests' check and the apps read
 * one definition.
 */
export const SERVICE_ENVS = {
  'control-plane': PlatformEnv.extend({
    XYP_CONTROL_PLANE_HTTP_PORT: envPort().default(3000),
    XYP_CONTROL_PLANE_GRPC_PORT: envPort().default(50051),
    XYP_BOARD_USER: z.string().min(1, 'must not be empty').default('admin'),
    /** No default: Bull Board can retry and delete jobs, so it never runs with a known password. */
    XYP_BOARD_PASSWORD: z.string({ error: 'required, Bull Board credentials' }).min(8, 'must be at least 8 characters'),
    /** Input of runs submitted without one; the bundled sample by default. */
    XYP_SAMPLE_CORPUS: z.string().optional(),
  }),
  corpus: PlatformEnv.extend({
    XYP_CORPUS_HTTP_PORT: envPort().default(3101),
  }),
  /**
   * The trainer trains and evaluates policies on the engine (`XYP_ENGINE_*`); cpt and sft on the
   * cluster engine with `XYP_TRAINING_ENGINE=cluster` (`XYP_KUBECONFIG`, `XYP_CLUSTER_*`).
   */
  trainer: PlatformEnv.extend({ XYP_TRAINER_HTTP_PORT: envPort().default(3102), ...EngineEnv.shape, ...ClusterEnv.shape }),
  /** The synthesis service serves the run's checkpoints as its embedded models and scores with the UFRM on the engine (`XYP_ENGINE_*`). */
  synthesis: PlatformEnv.extend({
    XYP_SYNTHESIS_HTTP_PORT: envPort().default(3103),
    /** The RewardService (`host:port`) the ensemble scores through; unset: the UFRM checkpoint in process. */
    XYP_SYNTHESIS_REWARD_URL: z.string().min(1).optional(),
    ...EngineEnv.shape,
  }),
  /**
   * The reward service serves `RewardService.Score` over gRPC on `XYP_REWARD_GRPC_PORT` when
   * `XYP_REWARD_CHECKPOINT` names a reward model, which it loads on the engine (`XYP_ENGINE_*`).
   */
  reward: PlatformEnv.extend({
    XYP_REWARD_HTTP_PORT: envPort().default(3104),
    XYP_REWARD_GRPC_PORT: envPort().default(50052),
    XYP_REWARD_CHECKPOINT: z.string().min(1).optional(),
    ...EngineEnv.shape,
    /** reward.train on the cluster engine (`XYP_TRAINING_ENGINE=cluster`, `XYP_KUBECONFIG`, `XYP_CLUSTER_*`). */
    ...ClusterEnv.shape,
  }),
  /**
   * The rlhf service loads checkpoints on the engine (`XYP_RLHF_SERVE_CHECKPOINT`), so it reads the
   * engine's backend settings too; rlhf.ppo on the cluster engine with `XYP_TRAINING_ENGINE=cluster`
   * (`XYP_KUBECONFIG`, `XYP_CLUSTER_*`).
   */
  rlhf: PlatformEnv.extend({ XYP_RLHF_HTTP_PORT: envPort().default(3105), XYP_RLHF_SERVE_CHECKPOINT: z.string().min(1).optional(), ...EngineEnv.shape, ...ClusterEnv.shape }),
} as const;

export type ServiceName = keyof typeof SERVICE_ENVS;
export type ServiceEnv<S extends ServiceName> = z.output<(typeof SERVICE_ENVS)[S]>;
export const SERVICE_NAMES = Object.keys(SERVICE_ENVS) as ServiceName[];

/** The variable that sets a service's HTTP port (health, metrics, Bull Board). */
export function httpPortVariable(service: ServiceName): string {
  return `XYP_${service.toUpperCase().replace(/-/g, '_')}_HTTP_PORT`;
}

export function defaultHttpPort(service: ServiceName): number {
  // The schema's own default, read by parsing an unset value.
  const shape = SERVICE_ENVS[service].shape as Record<string, z.ZodType>;
  return z.number().parse(shape[httpPortVariable(service)].parse(undefined));
}

/**
 * The HTTP port a service will listen on with this environment: the variable's value
 * where the schema accepts it, else the schema's default (a bad value stops the service
 * itself, with the line naming it).
 */
export function configuredHttpPort(service: ServiceName, env: Record<string, string | undefined>): number {
  const shape = SERVICE_ENVS[service].shape as Record<string, z.ZodType>;
  const value = env[httpPortVariable(service)];
  const parsed = shape[httpPortVariable(service)].safeParse(value === '' ? undefined : value);
  return parsed.success ? z.number().parse(parsed.data) : defaultHttpPort(service);
}
