import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PreferenceRecord, type RunEvent as RunEventRecord } from '@xyp/contracts';
import { unary } from '@xyp/grpc';
import { WORKSPACE_ROOT } from '@xyp/launcher';
import { RunEvents } from '@xyp/runs';
import { LocalDirectoryStore } from '@xyp/storage';
import { eventually } from '@xyp/testing';
import { PlatformHarness } from './platform-harness';

const XYP = join(WORKSPACE_ROOT, 'tools', 'xyp', 'bin', 'xyp.js');
const RUN = 'reward-run-e2e';

/**
 * The reward stages on real service processes (control plane, reward app), queues and store:
 * reward.prepare over two inputs in different layouts (one with bad lines), UFRM phase 1 and
 * phase 2 (from phase 1's checkpoint) and the BT-only ablation, then reward.evaluate joining them.
 * Tiny step counts: this checks the wiring, not the learning.
 */
const SPEC = `
version: 1
name: reward-e2e
inputs:
  corpus.jsonl: corpus.jsonl
  prefs.jsonl: prefs.jsonl
  hh.jsonl: hh.jsonl
params:
  reward.train: { steps: 3, batch_size: 4, layers: 1, width: 16, heads: 2, context: 96, eval_every: 2 }
stages:
  - id: reward.prepare
    inputs: { preferences: [input/prefs.jsonl, input/hh.jsonl] }
    params: { test_fraction: 0.3 }
  - id: reward.train#pretrain
    inputs: { pairs: reward.prepare/pretrain.jsonl, held_out: reward.prepare/test.jsonl }
    params: { phase: pretrain }
  - id: reward.train#finetune
    inputs: { pairs: reward.prepare/finetune.jsonl, held_out: reward.prepare/test.jsonl, init: reward.train#pretrain }
    params: { phase: finetune }
  - id: reward.train#bt-only
    inputs: { pairs: reward.prepare, held_out: reward.prepare/test.jsonl }
    params: { variant: bt-only, budget_phases: 2, w_irl: 0, w_cl: 0 }
  - id: reward.evaluate
    inputs: { test: reward.prepare, models: [reward.train#finetune, reward.train#bt-only] }
`;

const ref = (e: { stage: string; instance?: string }) => (e.instance ? `${e.stage}#${e.instance}` : e.stage);

describe('the reward stages as a run: prepare, two UFRM phases, the BT-only ablation, evaluation', () => {
  const harness = new PlatformHarness('reward');
  const dir = mkdtempSync(join(tmpdir(), 'xyp-reward-spec-'));
  let history: () => Promise<RunEventRecord[]>;

  beforeAll(async () => {
    const sample = readFileSync(join(WORKSPACE_ROOT, 'data', 'sample', 'preferences.jsonl'), 'utf8').split('\n').filter(Boolean);
    // Every 5th pair of the shipped sample (both sets), then two bad lines.
    const prefs = sample.filter((_, i) => i % 5 === 0);
    writeFileSync(join(dir, 'prefs.jsonl'), `${prefs.join('\n')}\n{"prompt": "x", "chosen": "same", "rejected": "same"}\nnot json\n`);
    // HH-RLHF layout: two whole dialogues sharing every turn but the last assistant one.
    const hh = sample
      .filter((_, i) => i % 5 === 1)
      .slice(0, 40)
      .map((line, i) => {
        const r = PreferenceRecord.parse(JSON.parse(line));
        const shared = `\n\nHuman: hello ${i}\n\nAssistant: hi, how can I help?\n\nHuman: ${r.prompt[0].content}\n\nAssistant: `;
        return JSON.stringify({ chosen: shared + r.chosen[0].content, rejected: shared + r.rejected[0].content });
      });
    writeFileSync(join(dir, 'hh.jsonl'), `${hh.join('\n')}\n`);
    writeFileSync(join(dir, 'corpus.jsonl'), '{"id":"d1","text":"unused","category":"news"}\n');
    writeFileSync(join(dir, 'spec.yaml'), SPEC);
    await Promise.all((['control-plane', 'reward'] as const).map((name) => harness.start(name)));
    const events = new RunEvents(harness.redis, harness.prefix);
    history = () => events.history(RUN, '0-0', 10_000);
  }, 90_000);

  afterAll(async () => {
    await harness.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('runs to the end, each instance committed once, phase 2 after phase 1', async () => {
    const submitted = spawnSync(process.execPath, [XYP, 'run', 'submit', join(dir, 'spec.yaml'), '--run-id', RUN, '--json', '--address', `127.0.0.1:${harness.grpcPort}`], { encoding: 'utf8', timeout: 60_000 });
    expect(submitted.stderr).toContain(`submitted: run ${RUN}`);
    expect(submitted.status).toBe(0);
    await eventually(
      async () => {
        const status = String((await unary(harness.client.getRun.bind(harness.client), { runId: RUN })).run?.status);
        if (status === 'RUN_STATUS_FAILED') throw new Error(`run failed: ${JSON.stringify((await history()).filter((e) => e.type === 'stage-failed'))}`);
        return status === 'RUN_STATUS_COMPLETED' ? true : undefined;
      },
      150_000,
      'the reward run to complete',
    );
    const events = await history();
    for (const id of ['reward.prepare', 'reward.train#pretrain', 'reward.train#finetune', 'reward.train#bt-only', 'reward.evaluate']) {
      expect(events.filter((e) => ref(e) === id && e.type === 'stage-completed'), id).toHaveLength(1);
    }
    const at = (id: string, type: string) => events.findIndex((e) => ref(e) === id && e.type === type);
    expect(at('reward.train#finetune', 'stage-started')).toBeGreaterThan(at('reward.train#pretrain', 'stage-completed'));
    expect(at('reward.evaluate', 'stage-started')).toBeGreaterThan(Math.max(at('reward.train#finetune', 'stage-completed'), at('reward.train#bt-only', 'stage-completed')));
  }, 200_000);

  it('commits the collections, rejects with line numbers, checkpoints with curves, and the alignment report', async () => {
    const store = new LocalDirectoryStore(harness.storeDir);
    const prepare = (await store.readManifest(RUN, 'reward.prepare'))!;
    const text = async (manifest: typeof prepare, name: string) => (await store.getObject(manifest.artifacts.find((a) => a.name === name)!.key)).toString('utf8');
    const result = prepare.result as { lines: number; accepted: number; rejected: number; train: number; test: number; rejectedByReason: Record<string, number> };
    expect(result.accepted + result.rejected).toBe(result.lines);
    expect(result.rejectedByReason['identical-responses']).toBe(1);
    expect(result.rejectedByReason['invalid-json']).toBe(1);
    const rejects = (await text(prepare, 'rejects.jsonl')).trim().split('\n').map((l) => JSON.parse(l) as { source: string; line: number; reason: string });
    const sampleLines = readFileSync(join(dir, 'prefs.jsonl'), 'utf8').split('\n').filter(Boolean).length;
    expect(rejects.find((r) => r.reason === 'invalid-json')?.line).toBe(sampleLines);
    const test = (await text(prepare, 'test.jsonl')).trim().split('\n').map((l) => PreferenceRecord.parse(JSON.parse(l)));
    const train = (await text(prepare, 'train.jsonl')).trim().split('\n').map((l) => PreferenceRecord.parse(JSON.parse(l)));
    expect(test.length).toBe(result.test);
    expect(train.length).toBe(result.train);
    // No prompt on both sides of the split.
    const prompts = new Set(train.map((r) => JSON.stringify(r.prompt)));
    expect(test.filter((r) => prompts.has(JSON.stringify(r.prompt)))).toEqual([]);
    // HH dialogues arrive as multi-turn pairs, the sample's finance pairs in the finetune collection.
    expect(train.some((r) => r.prompt.length > 1)).toBe(true);
    expect((await text(prepare, 'finetune.jsonl')).trim().split('\n').every((l) => PreferenceRecord.parse(JSON.parse(l)).set === 'finance')).toBe(true);

    const phase2 = (await store.readManifest(RUN, 'reward.train#finetune'))!;
    expect(phase2.result).toMatchObject({ kind: 'xyp-engine-checkpoint', checkpoint: `${RUN}/reward.train#finetune`, phase: 'finetune', variant: 'ufrm', init: `${RUN}/reward.train#pretrain` });
    expect(phase2.artifacts.map((a) => a.name)).toEqual(expect.arrayContaining(['model.safetensors', 'config.json', 'curves.jsonl', 'curves-accuracy.png']));
    const bt = (await store.readManifest(RUN, 'reward.train#bt-only'))!;
    expect(bt.result).toMatchObject({ variant: 'bt-only', metrics: { steps: 6 } });

    const evaluation = (await store.readManifest(RUN, 'reward.evaluate'))!;
    const evalResult = evaluation.result as { pairs: number; variants: { name: string; models: string[] }[] };
    expect(evalResult.pairs).toBe(result.test);
    expect(evalResult.variants.map((v) => v.name).sort()).toEqual(['bt-only', 'ufrm']);
    expect(evaluation.artifacts.map((a) => a.name).sort()).toEqual(['alignment.json', 'alignment.md', 'alignment.png']);
    expect(await text(evaluation, 'alignment.md')).toContain('金融领域计算');
  });
});
