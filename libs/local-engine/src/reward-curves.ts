/**
 * The curves of a reward-model job (`LocalEngine.trainRewardModel`): one `step` point per optimiser
 * step (the UFRM loss terms and the batch's statistics, before the update) and an `eval` point
 * every `evalEvery` steps (accuracy on a fixed sample of the training pairs and on the held-out
 * pairs, mean chosen and rejected reward). Written as `curves.jsonl` and plotted as PNGs.
 */
import { lineChart } from '@xyp/charts';

export interface RewardStepPoint {
  kind: 'step';
  phase: string;
  step: number;
  loss: number;
  bt: number;
  irl: number;
  cl: number;
  center: number;
  batchAccuracy: number;
  chosenMean: number;
  rejectedMean: number;
}

export interface RewardEvalPoint {
  kind: 'eval';
  phase: string;
  step: number;
  trainAccuracy: number;
  /** null when the job has no held-out pairs. */
  heldOutAccuracy: number | null;
  /** Over the held-out pairs, else over the training sample. */
  chosenMean: number;
  rejectedMean: number;
}

export type RewardCurvePoint = RewardStepPoint | RewardEvalPoint;

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** The three plots of a job's curves: loss terms, accuracy, reward means (PNG bytes by file name). */
export function rewardCurvesCharts(curves: readonly RewardCurvePoint[], title: string): Record<string, Uint8Array> {
  const steps = curves.filter((c): c is RewardStepPoint => c.kind === 'step');
  const evals = curves.filter((c): c is RewardEvalPoint => c.kind === 'eval');
  const series = <T>(points: readonly T[], x: (p: T) => number, y: (p: T) => number | null) => points.map((p) => [x(p), y(p) ?? Number.NaN] as [number, number]);
  const termSeries = (['loss', 'bt', 'irl', 'cl', 'center'] as const)
    .filter((term) => term === 'loss' || steps.some((p) => p[term] !== 0))
    .map((term) => ({ name: term, points: series(steps, (p) => p.step, (p) => p[term]) }));
  return {
    'curves-loss.png': lineChart({ title: `${title}: loss terms`, xLabel: 'step', yLabel: 'loss', series: termSeries }),
    'curves-accuracy.png': lineChart({
      title: `${title}: pairwise accuracy`,
      xLabel: 'step',
      yLabel: 'accuracy',
      series: [
        { name: 'train sample', points: series(evals, (p) => p.step, (p) => p.trainAccuracy) },
        ...(evals.some((p) => p.heldOutAccuracy !== null) ? [{ name: 'held out', points: series(evals, (p) => p.step, (p) => p.heldOutAccuracy) }] : []),
      ],
    }),
    'curves-rewards.png': lineChart({
      title: `${title}: mean reward`,
      xLabel: 'step',
      yLabel: 'reward',
      series: [
        { name: 'chosen', points: series(evals, (p) => p.step, (p) => p.chosenMean) },
        { name: 'rejected', points: series(evals, (p) => p.step, (p) => p.rejectedMean) },
      ],
    }),
  };
}
