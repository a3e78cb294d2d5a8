import { z } from 'zod';
import { RunId, Sha256Hex, StageNameFormat } from './ids';

/**
 * One committed object of a stage. Objects live under a content-addressed key,
 * `runs/<runId>/<stage>/objects/<sha256>`, so a retried write of the same bytes lands
 * on the same key.
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
 * The manifest commits a stage: it is written last, at `runs/<runId>/<stage>/manifest.json`.
 * A stage whose manifest exists is done; a retry that finds it skips the work.
 */
export const StageManifest = z.object({
  version: z.literal(1),
  runId: RunId,
  stage: StageNameFormat,
  committedAt: z.string().datetime(),
  artifacts: z.array(ArtifactEntry),
  /** The stage's result (validated by that stage's result schema in `STAGES`). */
  result: z.record(z.string(), z.unknown()),
});
export type StageManifest = z.infer<typeof StageManifest>;

export function manifestKey(runId: string, stage: string): string {
  return `runs/${runId}/${stage}/manifest.json`;
}

export function objectKey(runId: string, stage: string, sha256: string): string {
  return `runs/${runId}/${stage}/objects/${sha256}`;
}
