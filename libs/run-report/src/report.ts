import { z } from 'zod';
import { manifestRef, splitInstanceId, type RunEvent, type RunRecord, type StageManifest } from '@xyp/contracts';
import type { CompiledPlan, PlanStep } from '@xyp/planner';
import { instanceTimings, wallSeconds } from './timing';

const Artifact = z.object({ name: z.string(), key: z.string(), sha256: z.string(), size: z.number(), contentType: z.string() });

/**
 * The run report's data (`report.json`): one entry per stage instance with its result and
 * artifacts, the loops with every round's decision, the inputs. The Markdown and HTML reports are
 * rendered from this alone, so anyone holding the JSON (the CLI, for a copy under `.xyp/reports/`)
 * renders the same report with links of its own.
 */
export const RunReport = z.object({
  version: z.literal(1),
  runId: z.string(),
  spec: z.object({ name: z.string(), description: z.string() }),
  createdAt: z.string(),
  closedAt: z.string(),
  /** Seconds from creation to close. */
  wallSeconds: z.number().optional(),
  inputs: z.array(z.object({ name: z.string(), key: z.string() })),
  models: z.record(z.string(), z.object({ source: z.string(), description: z.string().optional() })),
  instances: z.array(
    z.object({
      id: z.string(),
      stage: z.string(),
      instance: z.string().optional(),
      loop: z.string().optional(),
      round: z.number().optional(),
      needs: z.array(z.string()),
      status: z.string(),
      committedAt: z.string().optional(),
      /** From the run's events: queued, started, ended, and the seconds between. */
      timing: z
        .object({
          queuedAt: z.string().optional(),
          startedAt: z.string().optional(),
          endedAt: z.string().optional(),
          runSeconds: z.number().optional(),
          waitSeconds: z.number().optional(),
          attempts: z.number(),
        })
        .optional(),
      result: z.record(z.string(), z.unknown()),
      artifacts: z.array(Artifact),
    }),
  ),
  loops: z.array(
    z.object({
      name: z.string(),
      maxRounds: z.number(),
      rounds: z.number(),
      stopped: z.boolean(),
      stopReason: z.string(),
      decisions: z.array(z.object({ round: z.number(), decider: z.string(), continue: z.boolean(), reason: z.string() })),
    }),
  ),
  /** Each instance's result by instance id (what reports before instances had under `stages`). */
  stages: z.record(z.string(), z.record(z.string(), z.unknown())),
  /** Every committed artifact of the run, inputs included, with the instance that committed it. */
  artifacts: z.array(Artifact.extend({ stage: z.string(), instance: z.string() })),
});
export type RunReport = z.infer<typeof RunReport>;

/**
 * The report data of a run from its plan, where it stands and its committed manifests; with the
 * run's events, each instance's timing too.
 */
export function buildRunReport(input: {
  record: RunRecord;
  plan: CompiledPlan;
  step: PlanStep;
  manifests: readonly StageManifest[];
  closedAt: string;
  events?: readonly RunEvent[];
}): RunReport {
  const byId = new Map(input.manifests.map((m) => [manifestRef(m), m]));
  const timings = instanceTimings(input.events ?? []);
  const instances = input.step.instances.map((view) => {
    const manifest = byId.get(view.id);
    return {
      id: view.id,
      stage: view.stage,
      ...(view.instance ? { instance: view.instance } : {}),
      ...(view.loop ? { loop: view.loop, round: view.round } : {}),
      needs: view.needs,
      status: view.status,
      ...(manifest ? { committedAt: manifest.committedAt } : {}),
      ...(timings.has(view.id) ? { timing: timings.get(view.id) } : {}),
      result: manifest?.result ?? {},
      artifacts: manifest?.artifacts ?? [],
    };
  });
  return RunReport.parse({
    version: 1,
    runId: input.record.runId,
    spec: { name: input.plan.name, description: input.plan.description },
    createdAt: input.record.createdAt,
    closedAt: input.closedAt,
    wallSeconds: wallSeconds({ createdAt: input.record.createdAt, closedAt: input.closedAt }),
    inputs: Object.entries(input.plan.inputs).map(([name, key]) => ({ name, key })),
    models: input.plan.models,
    instances,
    loops: input.step.loops,
    stages: Object.fromEntries(instances.map((i) => [i.id, i.result])),
    artifacts: input.manifests.flatMap((m) => m.artifacts.map((a) => ({ stage: m.stage, instance: m.instance ?? '', ...a }))),
  });
}

/** How a report links an artifact: a relative path to open, or undefined to show the key only. */
export type ArtifactLink = (key: string) => string | undefined;

/**
 * Links relative to where a report file lies inside the store (its own key), for the copies the
 * store keeps: `runs/<run>/pipeline.run/objects/<sha>` links `runs/<run>/corpus.bucket/...` as
 * `../../corpus.bucket/...`. Keys outside the report's run are shown, not linked.
 */
export function linksFromStoreKey(reportKey: string): ArtifactLink {
  const from = reportKey.split('/').slice(0, -1);
  return (key) => {
    const to = key.split('/');
    if (to[0] !== from[0] || to[1] !== from[1]) return undefined;
    let common = 0;
    while (common < from.length && common < to.length - 1 && from[common] === to[common]) common++;
    return [...from.slice(common).map(() => '..'), ...to.slice(common)].join('/');
  };
}

/** Links through a directory path relative to the report file (a copy outside the store: `../store/` + key). */
export function linksThrough(storeRoot: string): ArtifactLink {
  const root = storeRoot.endsWith('/') ? storeRoot : `${storeRoot}/`;
  return (key) => `${root}${key}`;
}

/** A section title: the instance id, with what it is an instance of when keyed. */
export function instanceTitle(id: string): string {
  const { stage, instance } = splitInstanceId(id);
  return instance ? `${id} (${stage}, instance ${instance})` : id;
}

/**
 * The time-per-stage table: each instance that ran, in plan order, with its wait, its own time and
 * its share of the run's wall time (branches overlap, so shares can add up to more than 100%).
 */
export function timeRows(report: RunReport): { id: string; startedAt: string; waitSeconds?: number; runSeconds?: number; share?: number; attempts: number }[] {
  const wall = report.wallSeconds ?? 0;
  return report.instances.flatMap(({ id, timing }) =>
    timing?.startedAt
      ? [
          {
            id,
            startedAt: timing.startedAt,
            waitSeconds: timing.waitSeconds,
            runSeconds: timing.runSeconds,
            share: wall > 0 && timing.runSeconds !== undefined ? timing.runSeconds / wall : undefined,
            attempts: timing.attempts,
          },
        ]
      : [],
  );
}
