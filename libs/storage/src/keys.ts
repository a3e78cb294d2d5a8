import { randomUUID } from 'node:crypto';
import { RunId, StageRefFormat, stageFolder } from '@xyp/contracts';
import { InvalidArtifactKeyError } from './errors';

/** S3 limits keys to 1024 bytes; the local store keeps the same limit so both accept the same keys. */
const MAX_KEY_BYTES = 1024;

/**
 * Rejects keys that could name something outside the store root on disk or that S3 and a
 * file system would interpret differently. Keys are `/`-separated relative paths.
 */
export function assertKey(key: string): string {
  const fail = (reason: string): never => {
    throw new InvalidArtifactKeyError(key, reason);
  };
  if (typeof key !== 'string' || key.length === 0) fail('must be a non-empty string');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) fail(`longer than ${MAX_KEY_BYTES} bytes`);
  if (key.startsWith('/')) fail('must be relative, not absolute');
  if (key.includes('\\')) fail('must not contain backslashes');
  if (key.includes('..')) fail('must not contain ".."');
  if ([...key].some((char) => char.charCodeAt(0) < 0x20 || char === '\u007f')) fail('must not contain control characters');
  const segments = key.split('/');
  if (segments.some((segment) => segment === '')) fail('must not contain empty segments');
  if (segments.some((segment) => segment === '.')) fail('must not contain "." segments');
  return key;
}

/** `runs/<runId>/`, after checking the run id against the contract so it cannot add segments. */
export function runPrefix(runId: string): string {
  const prefix = `runs/${runId}/`;
  const parsed = RunId.safeParse(runId);
  if (!parsed.success) throw new InvalidArtifactKeyError(prefix, `bad run id: ${parsed.error.issues[0]?.message}`);
  return prefix;
}

/**
 * `runs/<runId>/<stage>/` for a stage (its default instance), `runs/<runId>/<stage>/<instance>/`
 * for a stage instance ref `<stage>#<instance>`; every part checked against the contract.
 */
export function stagePrefix(runId: string, stage: string): string {
  const parsed = StageRefFormat.safeParse(stage);
  if (!parsed.success) throw new InvalidArtifactKeyError(`${runPrefix(runId)}${stage}/`, `bad stage name: ${parsed.error.issues[0]?.message}`);
  return `${runPrefix(runId)}${stageFolder(stage)}/`;
}

/**
 * A fresh key under the stage's `tmp/` folder. It sits beside `objects/` and `manifest.json`
 * so that removing a run also removes whatever an interrupted write left behind.
 */
export function tempKey(runId: string, stage: string): string {
  return `${stagePrefix(runId, stage)}tmp/${randomUUID()}`;
}
