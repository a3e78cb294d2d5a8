/**
 * Preference pairs as every reward stage reads and writes them, and the seed's subcategories.
 *
 * On disk a pair is one JSONL line in TRL's conversational preference form, with the fields the
 * recipe adds beside it:
 *
 *   {"prompt": [{role, content}, …], "chosen": [{"role": "assistant", "content": …}],
 *    "rejected": [{"role": "assistant", "content": …}], "id": …, "set": "finance", "category": …,
 *    "phase": "finetune", "margin"?: …, "provenance"?: {…}}
 *
 * (`@xyp/preference-data` reads every other common layout into this one.) `prompt` is the shared
 * conversation up to the last user turn; `chosen` and `rejected` are the two final assistant turns.
 */
import { z } from 'zod';

export const ChatRole = z.enum(['system', 'user', 'assistant']);
export const ChatTurn = z.object({ role: ChatRole, content: z.string() });
export type ChatTurn = z.infer<typeof ChatTurn>;

/** The two preference collections of the seed (三): finance pairs and general (helpful/safe) pairs. */
export const PreferenceSet = z.enum(['finance', 'general']);
export type PreferenceSet = z.infer<typeof PreferenceSet>;

/** UFRM's two training phases: `pretrain` (general, mostly helpfulness and safety), then `finetune` (finance). */
export const PreferencePhase = z.enum(['pretrain', 'finetune']);
export type PreferencePhase = z.infer<typeof PreferencePhase>;

/** The phase a set trains in when a pair names none: general → pretrain, finance → finetune. */
export function defaultPhaseOf(set: PreferenceSet): PreferencePhase {
  return set === 'finance' ? 'finetune' : 'pretrain';
}

/** One normalized preference pair (the line format above). */
export const PreferenceRecord = z.object({
  /** Stable id: a hash of the prompt and both responses. */
  id: z.string().min(1),
  prompt: z.array(ChatTurn).min(1),
  chosen: z.array(ChatTurn).length(1),
  rejected: z.array(ChatTurn).length(1),
  set: PreferenceSet,
  /** A subcategory id of `SUBCATEGORIES`, or the user's own category as given. */
  category: z.string().min(1),
  phase: PreferencePhase,
  /** How sure the label is (judge agreement, score gap, or a human label's strength). */
  margin: z.number().optional(),
  /** Where the pair came from: models, sampling settings, labeller, prompt version, source file and line. */
  provenance: z.record(z.string(), z.unknown()).optional(),
});
export type PreferenceRecord = z.infer<typeof PreferenceRecord>;

/** The final text of a record's prompt (the last user turn) and its two responses. */
export function recordTexts(record: PreferenceRecord): { prompt: string; chosen: string; rejected: string } {
  return { prompt: record.prompt[record.prompt.length - 1].content, chosen: record.chosen[0].content, rejected: record.rejected[0].content };
}

export interface Subcategory {
  /** `finance.calculation`: the id pairs, reports and charts use. */
  id: string;
  set: PreferenceSet;
  /** The seed's name (its tables 5 and 6). */
  name: string;
  /** English label, for charts and English reports. */
  label: string;
}

/**
 * The seed's subcategories (三, RM评估: the finance and general alignment tables). A pair's
 * `category` may be the id, the Chinese name or the English label; `resolveSubcategory` maps each
 * to the id.
 */
export const SUBCATEGORIES: readonly Subcategory[] = [
  { id: 'finance.investment-research', set: 'finance', name: '投研应用能力', label: 'investment research' },
  { id: 'finance.compliance-risk', set: 'finance', name: '合规与风险管理', label: 'compliance & risk' },
  { id: 'finance.encyclopedia', set: 'finance', name: '金融百科问答', label: 'finance encyclopedia' },
  { id: 'finance.understanding', set: 'finance', name: '金融理解认知', label: 'finance understanding' },
  { id: 'finance.calculation', set: 'finance', name: '金融领域计算', label: 'finance calculation' },
  { id: 'finance.generation', set: 'finance', name: '金融生成创作', label: 'finance writing' },
  { id: 'finance.event-analysis', set: 'finance', name: '金融事件解析', label: 'event analysis' },
  { id: 'finance.business-analysis', set: 'finance', name: '金融业务解析', label: 'business analysis' },
  { id: 'general.summarization', set: 'general', name: '内容摘要', label: 'summarization' },
  { id: 'general.chitchat', set: 'general', name: '日常交流', label: 'chit-chat' },
  { id: 'general.creative-writing', set: 'general', name: '生成创作', label: 'creative writing' },
  { id: 'general.reasoning', set: 'general', name: '推理', label: 'reasoning' },
  { id: 'general.language-understanding', set: 'general', name: '言语理解', label: 'language understanding' },
  { id: 'general.knowledge', set: 'general', name: '知识百科', label: 'knowledge' },
  { id: 'general.instruction-following', set: 'general', name: '指令遵循', label: 'instruction following' },
  { id: 'general.safety', set: 'general', name: '安全', label: 'safety' },
  { id: 'general.code', set: 'general', name: '代码能力', label: 'code' },
  { id: 'general.translation', set: 'general', name: '翻译能力', label: 'translation' },
  { id: 'general.calculation', set: 'general', name: '计算', label: 'calculation' },
];

const BY_ALIAS = new Map<string, Subcategory>(SUBCATEGORIES.flatMap((s) => [s.id, s.name, s.label].map((alias) => [alias.toLowerCase(), s] as const)));

/** The subcategory a `category` value names (id, Chinese name or English label), or undefined. */
export function resolveSubcategory(category: string): Subcategory | undefined {
  return BY_ALIAS.get(category.trim().toLowerCase());
}
