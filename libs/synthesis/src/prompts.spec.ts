import { describe, expect, it } from 'vitest';
import {
  ANALYSIS_FEWSHOT,
  EVOL_EQUALITY,
  EVOL_IN_BREADTH,
  EVOL_IN_DEPTH,
  EVOL_OPERATIONS,
  FUSION_PROMPT_VERSION,
  IN_DEPTH_METHODS,
  PROMPTS,
  PROMPT_VERSION_PATTERN,
  SELFQA_ANSWER,
  SELFQA_INSTRUCTIONS,
  renderEvolution,
} from './prompts';

const text = (messages: { content: string }[]) => messages.map((m) => m.content).join('\n');

describe('prompts', () => {
  it('are versioned <id>@<n>, one version per id', () => {
    expect(new Set(PROMPTS.map((p) => p.id)).size).toBe(PROMPTS.length);
    for (const p of PROMPTS) {
      expect(p.version).toMatch(PROMPT_VERSION_PATTERN);
      expect(p.version.startsWith(`${p.id}@`)).toBe(true);
    }
    expect(FUSION_PROMPT_VERSION).toBe('fusion@1');
    expect(SELFQA_INSTRUCTIONS.version).toBe('selfqa-instructions@1');
  });

  it('asks SelfQA for self-contained questions and for answers that do not point at the document', () => {
    const ask = text(SELFQA_INSTRUCTIONS.render({ document: '货币基金是……', count: 5, categoryName: '基金知识' }));
    expect(ask).toContain('货币基金是……');
    expect(ask).toContain('生成5个');
    expect(ask).toContain('不要使用');
    const answer = SELFQA_ANSWER.render({ document: '货币基金是……', instruction: '货币基金的风险有哪些？' });
    const body = text(answer);
    expect(body.indexOf('货币基金是……')).toBeLessThan(body.indexOf('货币基金的风险有哪些？'));
    expect(body).toContain('不要出现“根据上文”“根据文本”“文中提到”');
  });

  it('follows WizardLM’s in-depth structure for each of the five operations', () => {
    const depth = EVOL_OPERATIONS.filter((o) => o !== 'in-breadth');
    expect(depth).toEqual(['add-constraints', 'deepening', 'concretizing', 'increase-reasoning', 'complicate-input']);
    const bodies = depth.map((operation) => text(EVOL_IN_DEPTH.render({ instruction: '定投基金有什么好处？', operation })));
    for (const [i, body] of bodies.entries()) {
      expect(body).toContain(IN_DEPTH_METHODS[depth[i]]);
      expect(body).toContain('10到20个词');
      expect(body.trimEnd().endsWith('#The Given Prompt#:\n定投基金有什么好处？\n#Rewritten Prompt#:')).toBe(true);
      expect(body).toContain("'#The Given Prompt#'、'#Rewritten Prompt#'、'given prompt'和'rewritten prompt'不允许出现在#Rewritten Prompt#中");
    }
    expect(new Set(bodies).size).toBe(5);
  });

  it('follows WizardLM’s in-breadth and equality structure', () => {
    const breadth = text(EVOL_IN_BREADTH.render({ instruction: '定投基金有什么好处？' }));
    expect(breadth).toContain('更加少见');
    expect(breadth.trimEnd().endsWith('#Given Prompt#:\n定投基金有什么好处？\n#Created Prompt#:')).toBe(true);
    expect(renderEvolution('in-breadth', { instruction: 'x' }).promptVersion).toBe('evol-in-breadth@1');
    expect(renderEvolution('deepening', { instruction: 'x' }).promptVersion).toBe('evol-in-depth@1');
    const equality = text(EVOL_EQUALITY.render({ original: 'A问', evolved: 'B问' }));
    expect(equality).toContain('相同的约束和要求');
    expect(equality).toContain('相同的深度和广度');
    expect(equality.indexOf('A问')).toBeLessThan(equality.indexOf('B问'));
    expect(equality).toContain('Equal 或 Not Equal');
  });

  it('puts the expert exemplars as few-shot turns before the new topic', () => {
    const messages = ANALYSIS_FEWSHOT.render({
      exemplars: [
        { id: 'e1', category: 'c', topic: 'T1', analysis: 'A1' },
        { id: 'e2', category: 'c', topic: 'T2', material: 'M2', analysis: 'A2' },
      ],
      topic: 'T3',
      material: 'M3',
    });
    expect(messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'user']);
    expect(messages.slice(1).map((m) => m.content)).toEqual(['T1', 'A1', 'T2\n\n【材料】\nM2', 'A2', 'T3\n\n【材料】\nM3']);
    expect(messages[0].content).toContain('格式与分析深度');
  });
});
