import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { CORPUS_INPUT, parseRunSpecText } from '@xyp/planner';
import { RunReport, linksThrough, renderHtml, renderMarkdown } from '@xyp/run-report';
import type { ArtifactStore } from '@xyp/storage';

/** A run spec read from disk, with the input files it names by path, ready for SubmitRun. */
export interface SpecUpload {
  text: string;
  /** The corpus (`inputs: corpus.jsonl: <path>`), when the spec names one; else the server's sample. */
  inputJsonl?: Buffer;
  inputName?: string;
  files: Record<string, Buffer>;
}

/**
 * Reads a spec file and the input files its `inputs` name by `path` (relative to the spec).
 * Only the spec's shape is checked here, to find the paths; the control plane checks the rest
 * and names the field of any problem.
 */
export async function readSpecUpload(path: string): Promise<SpecUpload> {
  const text = await readFile(path, 'utf8');
  const spec = parseRunSpecText(text);
  const files: Record<string, Buffer> = {};
  let inputJsonl: Buffer | undefined;
  for (const [name, input] of Object.entries(spec.inputs)) {
    if (!input.path) continue;
    const file = isAbsolute(input.path) ? input.path : resolve(dirname(path), input.path);
    const content = await readFile(file).catch(() => {
      throw new Error(`${path}: inputs.${name}: cannot read ${file}`);
    });
    if (name === CORPUS_INPUT) inputJsonl = content;
    else files[name] = content;
  }
  return { text, ...(inputJsonl ? { inputJsonl, inputName: CORPUS_INPUT } : {}), files };
}

/**
 * Writes the run report as `<dir>/<runId>.html` and `.md`, rendered from the stored
 * `report.json` with links to the artifacts by relative path into a local store directory
 * (`storeDir`); for a store without one, the report lists each key. Returns both paths.
 */
export async function writeReportCopies(store: ArtifactStore, reportKey: string, dir: string, storeDir: string | undefined): Promise<{ html: string; markdown: string }> {
  const report = RunReport.parse(JSON.parse((await store.getObject(reportKey)).toString('utf8')));
  await mkdir(dir, { recursive: true });
  const links = storeDir && existsSync(storeDir) ? linksThrough(relative(dir, storeDir).split('\\').join('/') || '.') : () => undefined;
  const html = join(dir, `${report.runId}.html`);
  const markdown = join(dir, `${report.runId}.md`);
  await writeFile(html, renderHtml(report, links));
  await writeFile(markdown, renderMarkdown(report, links));
  return { html, markdown };
}
