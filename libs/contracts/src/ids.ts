import { z } from 'zod';

/**
 * A run id names every key a run owns (`runs/<runId>/...`) and prefixes its job ids.
 * BullMQ job ids must not contain `:` and must not be all digits, so ids are
 * lower-case words joined by `-` and start with a letter.
 */
export const RunId = z
  .string()
  .regex(/^[a-z][a-z0-9-]{2,62}$/, 'run id: 3-63 characters of a-z, 0-9 and -, starting with a letter');
export type RunId = z.infer<typeof RunId>;

/** A stage name as used in queue names, keys and events, e.g. `corpus.bucket`. */
export const StageNameFormat = z.string().regex(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/, 'stage name like corpus.bucket');

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'sha256 as 64 lower-case hex digits');

/**
 * The key of one stage instance within a run, e.g. `phase-2` in `corpus.bucket#phase-2`: lower-case
 * words joined by `-` (no `.`, so it never reads as part of a stage name). `objects` and `tmp` are
 * the folders of a stage's own files, so an instance folder beside them cannot take those names.
 */
export const InstanceKey = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'instance key: 1-63 characters of a-z, 0-9 and -, starting with a letter or digit')
  .refine((key) => key !== 'objects' && key !== 'tmp', 'instance key: objects and tmp are reserved');
export type InstanceKey = z.infer<typeof InstanceKey>;

/**
 * A stage instance as one string: the stage alone for its default instance (`corpus.inspect`), or
 * `<stage>#<instance>` (`rlhf.ppo#round-2`). Job ids, store keys, manifests and run events use it.
 */
export function instanceId(stage: string, instance?: string): string {
  return instance ? `${stage}#${instance}` : stage;
}

/** `corpus.bucket#phase-2` → `{ stage: 'corpus.bucket', instance: 'phase-2' }`; no `#`: the default instance. */
export function splitInstanceId(id: string): { stage: string; instance?: string } {
  const at = id.indexOf('#');
  return at < 0 ? { stage: id } : { stage: id.slice(0, at), instance: id.slice(at + 1) };
}

/** A stage or stage instance (`corpus.bucket` or `corpus.bucket#phase-2`), checked part by part. */
export const StageRefFormat = z.string().superRefine((ref, ctx) => {
  const { stage, instance } = splitInstanceId(ref);
  const stageOk = StageNameFormat.safeParse(stage);
  if (!stageOk.success) ctx.addIssue({ code: 'custom', message: stageOk.error.issues[0].message });
  if (instance !== undefined) {
    const keyOk = InstanceKey.safeParse(instance);
    if (!keyOk.success) ctx.addIssue({ code: 'custom', message: keyOk.error.issues[0].message });
  }
});
