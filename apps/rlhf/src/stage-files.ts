import type { ArtifactEntry } from '@xyp/contracts';
import type { StageContext } from '@xyp/queue';
import type { StageFiles } from '@xyp/rlhf-stages';

const TYPES: Record<string, string> = { json: 'application/json', jsonl: 'application/x-ndjson', md: 'text/markdown', csv: 'text/csv', png: 'image/png' };

/** Puts a stage's files (name → text or bytes) into its instance's folder; returns their entries. */
export async function putStageFiles(context: StageContext, runId: string, stage: string, files: StageFiles): Promise<ArtifactEntry[]> {
  const entries: ArtifactEntry[] = [];
  for (const [name, body] of Object.entries(files)) {
    entries.push(await context.store.putObject(runId, stage, name, Buffer.from(body), TYPES[name.split('.').pop() ?? ''] ?? 'application/octet-stream'));
  }
  return entries;
}
