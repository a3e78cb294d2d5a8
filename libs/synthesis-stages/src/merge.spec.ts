import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chatMessages, dedupItems, type SftItem } from '@xyp/synthesis';
import { afterAll, describe, expect, it } from 'vitest';
import { mergeSynthesis } from './merge';
import { jsonLines, jsonl, tempDir } from './spec-support';

const LONG = '个人养老金账户每年缴费上限为一万二千元，缴费可在综合所得中据实扣除，领取时按百分之三的税率单独计税，适合有稳定收入、希望长期积累养老资金的上班族开通。';

function selfqa(id: string, question: string, answer: string, category = 'tax.policy'): SftItem {
  return { id, messages: chatMessages(question, answer), category, provenance: { generator: 'selfqa', models: ['writer'], promptVersion: 'selfqa-instructions@1', sourceId: id.split('/')[0], supportScore: 0.9 } };
}
function fused(id: string, question: string, answer: string, category = 'wealth.retirement'): SftItem {
  return {
    id,
    messages: chatMessages(question, answer),
    category,
    provenance: { generator: 'ensemble', models: ['a', 'fuse'], promptVersion: 'fusion@1', fusionPromptVersion: 'fusion@1', sourceId: id.split('/')[0], candidates: [{ model: 'a', score: 0.9, kept: true }] },
  };
}

describe('mergeSynthesis', () => {
  const made = tempDir('synth-merge');
  afterAll(async () => (await made).remove());

  it('removes exact and near duplicates across generators, keeps provenance, counts per category and generator', async () => {
    const { dir } = await made;
    const first = [selfqa('d1/qa-1', '个人养老金每年能存多少？', LONG), selfqa('d1/qa-2', '什么是净值型理财？', '不承诺保本的理财产品。', 'wealth.products')];
    const second = [
      fused('q1/fused', '个人养老金每年能存多少？', LONG),
      fused('q2/fused', '个人养老金每年能存多少？', LONG.replace('上班族', '打工人')),
      fused('q3/fused', '基金定投适合谁？', '适合有稳定现金流、能长期坚持的投资者。', 'funds.selection'),
    ];
    await mkdir(join(dir, 'selfqa'), { recursive: true });
    await mkdir(join(dir, 'ensemble'), { recursive: true });
    await writeFile(join(dir, 'selfqa', 'sft.jsonl'), jsonl(first));
    await writeFile(join(dir, 'ensemble', 'sft.jsonl'), jsonl(second));

    const summary = await mergeSynthesis([join(dir, 'selfqa'), join(dir, 'ensemble')], { out: join(dir, 'merged'), dedup: { nearDuplicateThreshold: 0.7 } });
    const kept = await jsonLines<SftItem>(summary.files.sft);
    expect(kept.map((i) => i.id)).toEqual(['d1/qa-1', 'd1/qa-2', 'q3/fused']);
    expect(kept[0]).toEqual(first[0]);
    expect(await jsonLines(summary.files.duplicates)).toEqual([
      { id: 'q1/fused', reason: 'exact-duplicate', of: 'd1/qa-1' },
      { id: 'q2/fused', reason: 'near-duplicate', of: 'd1/qa-1', similarity: expect.any(Number) },
    ]);
    expect(summary).toMatchObject({ items: 5, kept: 3, exactDuplicates: 1, nearDuplicates: 1 });
    expect(summary.inputs.map((i) => i.items)).toEqual([2, 3]);
    expect(summary.byCategory).toEqual({
      'funds.selection': { items: 1, kept: 1, exactDuplicates: 0, nearDuplicates: 0 },
      'tax.policy': { items: 1, kept: 1, exactDuplicates: 0, nearDuplicates: 0 },
      'wealth.products': { items: 1, kept: 1, exactDuplicates: 0, nearDuplicates: 0 },
      'wealth.retirement': { items: 2, kept: 0, exactDuplicates: 1, nearDuplicates: 1 },
    });
    expect(summary.byGenerator).toEqual({ ensemble: { items: 3, kept: 1, exactDuplicates: 1, nearDuplicates: 1 }, selfqa: { items: 2, kept: 2, exactDuplicates: 0, nearDuplicates: 0 } });
    // The streamed filter decides as dedupItems over the concatenation does.
    const batch = dedupItems([...first, ...second], { nearDuplicateThreshold: 0.7 });
    expect(batch.kept.map((i) => i.id)).toEqual(kept.map((i) => i.id));
  });

  it('fails on an item id that two inputs share, and on a line that is no SFT item, naming file and line', async () => {
    const { dir } = await made;
    await mkdir(join(dir, 'again'), { recursive: true });
    await writeFile(join(dir, 'again', 'sft.jsonl'), jsonl([selfqa('d1/qa-1', '别的问题？', '别的回答。')]));
    await expect(mergeSynthesis([join(dir, 'selfqa'), join(dir, 'again')], { out: join(dir, 'm2') })).rejects.toThrow(`merge: ${join(dir, 'again', 'sft.jsonl')}:1: item id d1/qa-1 is also in ${join(dir, 'selfqa', 'sft.jsonl')}:1`);
    await writeFile(join(dir, 'bad.jsonl'), jsonl([{ id: 'x', messages: [{ role: 'user', content: 'q' }], category: 'tax.policy' }]));
    await expect(mergeSynthesis([join(dir, 'bad.jsonl')], { out: join(dir, 'm3') })).rejects.toThrow(/bad\.jsonl:1: not an SFT item/);
  });
});
