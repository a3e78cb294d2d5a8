/**
 * Every prompt the synthesis stages send, versioned. A prompt is data: an id, a version string
 * `<id>@<n>` and a render function from its inputs to chat messages. The version goes into each
 * item's provenance (`promptVersion`, `fusionPromptVersion`), so a dataset says which wording made
 * it; change a prompt's text → bump its number (FastChat keeps judge prompts the same way, by
 * name and version).
 *
 * Sources of the wording (adapted to Chinese finance, the structure kept):
 * - SelfQA: Zhang & Yang, "Self-QA: Unsupervised Knowledge Guided Language Model Alignment"
 *   (arXiv 2305.11952), knowledge-guided instruction generation and machine reading comprehension.
 * - Evol-Instruct: Xu et al., "WizardLM: Empowering Large Language Models to Follow Complex
 *   Instructions" (arXiv 2304.12244), in-depth evolving (add constraints, deepening, concretizing,
 *   increased reasoning steps, complicate input), in-breadth evolving, and the equality check of
 *   elimination evolving. The markers `#The Given Prompt#`, `#Rewritten Prompt#`, `#Given Prompt#`
 *   and `#Created Prompt#` stay in English: the elimination rule looks for them in the output.
 * - Fusion: Wang et al., "Mixture-of-Agents Enhances Large Language Model Capabilities"
 *   (arXiv 2406.04692), the aggregate-and-synthesize prompt.
 */
import type { ChatTurn } from '@xyp/contracts';

export interface VersionedPrompt<Input> {
  id: string;
  /** `<id>@<n>`: what provenance records. */
  version: string;
  render(input: Input): ChatTurn[];
}

function prompt<Input>(id: string, revision: number, render: (input: Input) => ChatTurn[]): VersionedPrompt<Input> {
  return { id, version: `${id}@${revision}`, render };
}

const FINANCE_EXPERT = '你是一名严谨的金融领域专家，熟悉中国金融市场、金融产品与监管法规。';

// ---------------------------------------------------------------- SelfQA

export interface SelfQaInstructionInput {
  /** The knowledge as text (`renderKnowledge` turns structured knowledge into it). */
  document: string;
  /** How many instructions to ask for. */
  count: number;
  /** Chinese name of the category, to keep the questions in its field. */
  categoryName?: string;
}

/** SelfQA step 1, knowledge-guided instruction generation: questions answerable from the document, asked as if it were not there. */
export const SELFQA_INSTRUCTIONS = prompt<SelfQaInstructionInput>('selfqa-instructions', 1, ({ document, count, categoryName }) => [
  { role: 'system', content: FINANCE_EXPERT },
  {
    role: 'user',
    content: [
      '以下是背景知识：',
      document,
      '',
      `请根据以上背景知识，生成${count}个尽可能多样的指令或问题${categoryName ? `（领域：${categoryName}）` : ''}。这些问题可以是关于事实的提问，也可以是对相关内容的理解、分析与评价。`,
      '提问时请假设提问者看不到这段背景知识，因此问题中不要使用“这”“这些”“上文”“文中”“该文档”等指代词，每个问题都必须完整、自洽，写明所涉及的主体（例如产品、机构或法规的名称）。',
      '请按以下格式输出：',
      '1. 问题：……',
      '2. 问题：……',
    ].join('\n'),
  },
]);

export interface SelfQaAnswerInput {
  document: string;
  instruction: string;
}

/** SelfQA step 2, machine reading comprehension: answer from the same document, without pointing at it. */
export const SELFQA_ANSWER = prompt<SelfQaAnswerInput>('selfqa-answer', 1, ({ document, instruction }) => [
  { role: 'system', content: FINANCE_EXPERT },
  {
    role: 'user',
    content: [
      '以下是背景知识：',
      document,
      '',
      `请依据以上背景知识回答下面的问题：${instruction}`,
      '请尽可能完整、详细地回答，但不要改变背景知识中的关键信息（数字、日期、名称、条件），也不要补充背景知识中没有的数据。',
      '回答中不要出现“根据上文”“根据文本”“文中提到”“材料显示”“该文档”“背景知识”等指代原文的表述，要像直接回答用户的提问一样作答。',
      '请只输出答案本身。',
    ].join('\n'),
  },
]);

// ---------------------------------------------------------------- Evol-Instruct

/** The five in-depth operations of WizardLM and the in-breadth mutation. */
export const EVOL_OPERATIONS = ['add-constraints', 'deepening', 'concretizing', 'increase-reasoning', 'complicate-input', 'in-breadth'] as const;
export type EvolOperation = (typeof EVOL_OPERATIONS)[number];
export type InDepthOperation = Exclude<EvolOperation, 'in-breadth'>;

/** The `{method}` line of the in-depth prompt, per operation (WizardLM's wording, finance examples added). */
export const IN_DEPTH_METHODS: Readonly<Record<InDepthOperation, string>> = {
  'add-constraints': '请在#The Given Prompt#中再增加一项约束或要求（例如投资期限、金额、风险偏好、监管要求或输出格式）。',
  deepening: '如果#The Given Prompt#包含对某些问题的询问，可以增加询问的深度和广度（例如追问原因、影响、风险，或不同市场情景下的差异）。',
  concretizing: '请用更具体的概念替换一般性的概念（例如把“某只基金”换成具体类型、具体费率和期限的基金）。',
  'increase-reasoning': '如果#The Given Prompt#只需几步简单的思考就能解决，请把它改写为明确要求多步推理（例如先计算、再比较、最后给出结论和依据）。',
  'complicate-input': '请在#The Given Prompt#中加入需要处理的复杂输入，例如一张Markdown表格（财务报表、利率或净值数据）、一段JSON格式的交易记录，或一段公告、合同条款的原文，并让问题依赖这些输入来回答。',
};

export interface EvolInput {
  instruction: string;
  categoryName?: string;
}

/** In-depth evolving: rewrite the given prompt into a harder one by one operation, adding 10 to 20 words. */
export const EVOL_IN_DEPTH = prompt<EvolInput & { operation: InDepthOperation }>('evol-in-depth', 1, ({ instruction, categoryName, operation }) => [
  {
    role: 'user',
    content: [
      '我希望你充当一名提示改写者（Prompt Rewriter）。',
      '你的目标是把给定的提示改写成一个更复杂的版本，让那些著名的AI系统（例如ChatGPT和GPT-4）更难处理。',
      '但改写后的提示必须合理，并且能够被人类理解和回答。',
      '改写时不能省略#The Given Prompt#中的非文本部分，例如表格和代码；也不要省略#The Given Prompt#中的输入。',
      `该提示属于金融领域${categoryName ? `（${categoryName}）` : ''}，改写后仍须是一个专业、真实的金融问题，涉及的产品、数据和法规须合乎常识。`,
      '你应当使用以下方法使给定的提示复杂化：',
      IN_DEPTH_METHODS[operation],
      '你应尽量避免让#Rewritten Prompt#变得冗长，#Rewritten Prompt#只能在#The Given Prompt#的基础上增加10到20个词（中文约10到30个字）。',
      "'#The Given Prompt#'、'#Rewritten Prompt#'、'given prompt'和'rewritten prompt'不允许出现在#Rewritten Prompt#中。",
      '#The Given Prompt#:',
      instruction,
      '#Rewritten Prompt#:',
    ].join('\n'),
  },
]);

/** In-breadth evolving: a brand-new, rarer prompt in the same domain, of similar length and complexity. */
export const EVOL_IN_BREADTH = prompt<EvolInput>('evol-in-breadth', 1, ({ instruction, categoryName }) => [
  {
    role: 'user',
    content: [
      '我希望你充当一名提示创作者（Prompt Creator）。',
      '你的目标是从#Given Prompt#中汲取灵感，创作一个全新的提示。',
      `这个新提示应与#Given Prompt#属于同一领域（金融${categoryName ? `：${categoryName}` : ''}），但更加少见、更长尾。`,
      '#Created Prompt#的长度和复杂度应与#Given Prompt#相近。',
      '#Created Prompt#必须合理，并且能够被人类理解和回答。',
      "'#Given Prompt#'、'#Created Prompt#'、'given prompt'和'created prompt'不允许出现在#Created Prompt#中。",
      '#Given Prompt#:',
      instruction,
      '#Created Prompt#:',
    ].join('\n'),
  },
]);

/** The messages and prompt version that evolve `instruction` by `operation`. */
export function renderEvolution(operation: EvolOperation, input: EvolInput): { promptVersion: string; messages: ChatTurn[] } {
  if (operation === 'in-breadth') return { promptVersion: EVOL_IN_BREADTH.version, messages: EVOL_IN_BREADTH.render(input) };
  return { promptVersion: EVOL_IN_DEPTH.version, messages: EVOL_IN_DEPTH.render({ ...input, operation }) };
}

/** Elimination rule 1's judge: are two instructions equal (same constraints, same depth and breadth)? Answer `Equal` or `Not Equal`. */
export const EVOL_EQUALITY = prompt<{ original: string; evolved: string }>('evol-equality', 1, ({ original, evolved }) => [
  {
    role: 'user',
    content: [
      '下面是发给AI助手的两条指令，请判断它们是否彼此等同，即同时满足以下要求：',
      '1. 它们具有相同的约束和要求。',
      '2. 它们的询问具有相同的深度和广度。',
      `第一条指令：${original}`,
      `第二条指令：${evolved}`,
      '你的判断（只需回答 Equal 或 Not Equal，无需解释原因）：',
    ].join('\n'),
  },
]);

// ---------------------------------------------------------------- Expert-seeded analysis

export interface AnalysisExemplar {
  id: string;
  /** Taxonomy id of the category. */
  category: string;
  /** The question, event or report the analysis answers. */
  topic: string;
  /** Material the analysis worked from (an announcement, a report excerpt), when it had one. */
  material?: string;
  /** The expert-written analysis. */
  analysis: string;
}

export interface AnalysisInput {
  exemplars: readonly AnalysisExemplar[];
  topic: string;
  material?: string;
}

function analysisRequest(topic: string, material: string | undefined): string {
  return material ? `${topic}\n\n【材料】\n${material}` : topic;
}

/**
 * Expert-seeded analysis: the expert analyses as few-shot turns (user: topic, assistant: the
 * expert's analysis), then the new topic; the model answers in the same structure and depth.
 */
export const ANALYSIS_FEWSHOT = prompt<AnalysisInput>('analysis-fewshot', 1, ({ exemplars, topic, material }) => [
  {
    role: 'system',
    content: [
      '你是一名资深金融分析师。接下来的示例回答由多名金融专家撰写，代表了要求的格式与分析深度。',
      '请针对用户的新问题撰写分析：严格沿用示例的结构（相同的小标题，相同的顺序）和同等的篇幅与深度；给出明确、有依据的结论，而不是泛泛而谈；',
      '引用的数据只能来自用户提供的材料或公认的事实，不要编造数据。',
    ].join(''),
  },
  ...exemplars.flatMap((e): ChatTurn[] => [
    { role: 'user', content: analysisRequest(e.topic, e.material) },
    { role: 'assistant', content: e.analysis },
  ]),
  { role: 'user', content: analysisRequest(topic, material) },
]);

// ---------------------------------------------------------------- Fusion (multi-model ensemble)

export interface FusionInput {
  query: string;
  /** The surviving answers, best first; shown numbered 1..n, never with their model. */
  candidates: readonly string[];
}

/**
 * The aggregator of the multi-model ensemble (seed 二, 图1; the Mixture-of-Agents
 * aggregate-and-synthesize structure): the query, then the numbered candidates, then the
 * instruction to synthesise one better answer — evaluate them critically (some may be wrong or
 * biased), do not copy any one of them, and do not mention them.
 */
export const FUSION = prompt<FusionInput>('fusion', 1, ({ query, candidates }) => [
  {
    role: 'system',
    content: [
      FINANCE_EXPERT,
      '你会收到一个用户问题和若干个针对该问题的候选回答。你的任务是把这些候选回答综合成一个高质量的回答。',
      '请批判性地评估候选回答中的信息，认识到其中一些内容可能存在偏差、过时或错误；候选回答相互矛盾时，依据专业知识判断正误。',
      '你的回答不应简单复制某个候选回答，而应取长补短，给出更准确、更全面、结构清晰且逻辑连贯的回答。',
      '回答中不要提及候选回答、其他模型或这些说明的存在，直接面向用户作答。',
    ].join('\n'),
  },
  {
    role: 'user',
    content: [
      '【用户问题】',
      query,
      '',
      '【候选回答】',
      ...candidates.flatMap((answer, i) => [`候选回答${i + 1}：`, answer, '']),
      '请综合以上候选回答，直接输出你给用户的最终回答。',
    ].join('\n'),
  },
]);

/** The fusion prompt's version, for `provenance.fusionPromptVersion`. */
export const FUSION_PROMPT_VERSION = FUSION.version;

/** Every prompt of this lib, by id. */
export const PROMPTS: readonly VersionedPrompt<never>[] = [SELFQA_INSTRUCTIONS, SELFQA_ANSWER, EVOL_IN_DEPTH, EVOL_IN_BREADTH, EVOL_EQUALITY, ANALYSIS_FEWSHOT, FUSION] as readonly VersionedPrompt<never>[];

/** A prompt version as provenance records it: `<id>@<n>`. */
export const PROMPT_VERSION_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*@[1-9]\d*$/;
