import { z } from 'zod';
import { InstanceKey, RunId, Sha256Hex, StageNameFormat, splitInstanceId } from './ids';

/**
 * One committed object of a stage instance. Objects live under a content-addressed key,
 * `runs/<runId>/<stage>/objects/<sha256>` (the stage's default instance) or
 * `runs/<runId>/<stage>/<instance>/objects/<sha256>`, so a retried write of the same bytes
 * lands on the same key.
 */
export const ArtifactEntry = z.object({
  /** The name a stage gives the object, e.g. `shards/2048.bin`. */
  name: z.string().min(1).max(512).regex(/^[^/][^\\]*$/, 'relative name without backslashes'),
  key: z.string().min(1),
  sha256: Sha256Hex,
  size: z.number().int().nonnegative(),
  contentType: z.string().default('application/octet-stream'),
});
export type ArtifactEntry = z.infer<typeof ArtifactEntry>;

/**
 * The manifest commits a stage instance: it is written last, at
 * `runs/<runId>/<stage>/[<instance>/]manifest.json`. An instance whose manifest exists is done;
 * a retry that finds it skips the work.
 */
export const StageManifest = z.object({
  version: z.literal(1),
  runId: RunId,
  stage: StageNameFormat,
  /** The instance key (`phase-2` of `corpus.bucket#phase-2`); absent for the stage's default instance. */
  instance: InstanceKey.optional(),
  committedAt: z.string().datetime(),
  artifacts: z.array(ArtifactEntry),
  /** The stage's result (validated by that stage's result schema in `STAGES`). */
  result: z.record(z.string(), z.unknown()),
});
export type StageManifest = z.infer<typeof StageManifest>;

/**
 * The folder of a stage instance inside its run: `corpus.bucket` for the default instance,
 * `corpus.bucket/phase-2` for `corpus.bucket#phase-2`. Every key helper takes such a stage ref.
 */
export function stageFolder(stageRef: string): string {
  const { stage, instance } = splitInstanceId(stageRef);
  return instance === undefined ? stage : `${stage}/${instance}`;
}

/** The stage ref (`stage` or `stage#instance`) a manifest commits. */
export function manifestRef(manifest: Pick<StageManifest, 'stage' | 'instance'>): string {
  return manifest.instance ? `${manifest.stage}#${manifest.instance}` : manifest.stage;
}

export function manifestKey(runId: string, stageRef: string): string {
  return `runs/${runId}/${stageFolder(stageRef)}/manifest.json`;
}

export function objectKey(runId: string, stageRef: string, sha256: string): string {
  return `runs/${runId}/${stageFolder(stageRef)}/objects/${sha256}`;
}

/** The manifest `result.kind` of a stage that holds an engine checkpoint (`@xyp/engine` writes it). */
export const CHECKPOINT_RESULT_KIND = 'xyp-engine-checkpoint';
