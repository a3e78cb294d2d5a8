/**
 * The Prometheus metrics of a service, on one prom-client `Registry` per process
 * (`metricsRegistry`, injected as `METRICS_REGISTRY`, served at `/metrics`): process metrics, and
 * what every stage worker records (`StageJobMetrics`):
 *  - `xyp_stage_job_duration_seconds{stage,outcome}` (histogram) and `xyp_stage_jobs_total{stage,outcome}`,
 *    outcome `completed | failed | cancelled | skipped-committed`, per job name (the stage, its part
 *    job, or `pipeline.step`);
 *  - `xyp_training_loss{stage,instance}` and `xyp_reward_mean{stage,instance}`: the last value a
 *    training job reported with its progress (`TrainingFigures`), per stage instance (`instance` is
 *    the instance key, empty for a stage's default instance).
 * Apps add their own metrics to the same registry (the LLM gateway's `xyp_llm_*`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { StageJobOutcome } from './job-context';

/** Injection token of the process's one metrics registry. */
export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

/** Injection token of the `StageJobMetrics` the stage workers record on. */
export const STAGE_JOB_METRICS = Symbol('STAGE_JOB_METRICS');

/** A registry with the default process metrics (`process_*`, `nodejs_*`). */
export function metricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Figures a training job reports with its progress (the engine's own values, never estimated). */
export interface TrainingFigures {
  /** The training loss of the last step. */
  loss?: number;
  /** The mean reward of the last rollout batch (PPO). */
  meanReward?: number;
}

/** Seconds: a part job of a few seconds up to a training job of hours. */
const DURATION_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 43_200];

/** A metric already on the registry (a second `StageJobMetrics` on it) is reused rather than registered twice. */
function metric<T extends Metric>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export class StageJobMetrics {
  private readonly duration: Histogram<'stage' | 'outcome'>;
  private readonly jobs: Counter<'stage' | 'outcome'>;
  private readonly loss: Gauge<'stage' | 'instance'>;
  private readonly reward: Gauge<'stage' | 'instance'>;

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.duration = metric(registry, 'xyp_stage_job_duration_seconds', () => new Histogram({ name: 'xyp_stage_job_duration_seconds', help: 'Stage jobs by job name (stage, part job, pipeline.step) and outcome (completed, failed, cancelled, skipped-committed): seconds in process(job)', labelNames: ['stage', 'outcome'], buckets: DURATION_BUCKETS, registers }));
    this.jobs = metric(registry, 'xyp_stage_jobs_total', () => new Counter({ name: 'xyp_stage_jobs_total', help: 'Stage jobs processed, by job name and outcome (completed, failed, cancelled, skipped-committed)', labelNames: ['stage', 'outcome'], registers }));
    this.loss = metric(registry, 'xyp_training_loss', () => new Gauge({ name: 'xyp_training_loss', help: 'Training loss of the last step a training job reported, by stage and instance key', labelNames: ['stage', 'instance'], registers }));
    this.reward = metric(registry, 'xyp_reward_mean', () => new Gauge({ name: 'xyp_reward_mean', help: 'Mean reward of the last rollout batch a PPO job reported, by stage and instance key', labelNames: ['stage', 'instance'], registers }));
  }

  jobEnded(stage: string, outcome: StageJobOutcome, seconds: number): void {
    this.duration.observe({ stage, outcome }, seconds);
    this.jobs.inc({ stage, outcome });
  }

  training(stage: string, instance: string, figures: TrainingFigures): void {
    if (figures.loss !== undefined && Number.isFinite(figures.loss)) this.loss.set({ stage, instance }, figures.loss);
    if (figures.meanReward !== undefined && Number.isFinite(figures.meanReward)) this.reward.set({ stage, instance }, figures.meanReward);
  }
}
