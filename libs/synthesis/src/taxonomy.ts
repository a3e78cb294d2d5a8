/**
 * The finance taxonomy of SFT data synthesis (seed report 二, 金融领域细分的数据合成): the finance
 * domain cut into a few dozen categories under big boards (理财, 保险, 信贷, …), each with the
 * synthesis method that suits it. The seed's rule, as this table applies it:
 *
 *   knowledge-heavy, encyclopedic categories      → `selfqa`         (SelfQA over finance
 *                                                    encyclopedia documents: grounded, few hallucinations)
 *   instruction following, complex reasoning,     → `evol-instruct`  (Evol-Instruct over the
 *   calculation                                     accumulated finance QA: harder, more varied)
 *   deep analysis (投研, 事件解析, 业务解析)          → `expert-seeded`  (expert-written analyses as
 *                                                    few-shot exemplars)
 *   generic / open QA                             → `ensemble`       (several models answer, UFRM
 *                                                    filters, one model fuses the survivors)
 *
 * Besides the fine categories, the seed's evaluation subcategories (三, RM评估: 8 finance, 11
 * general) are categories too, with the contract's ids and names (`SUBCATEGORIES` of
 * `@xyp/contracts`, not repeated here), so a recipe may name either. Every fine category rolls up
 * to one of them (`evalSubcategory`), which is how per-subcategory reports group synthesised data.
 *
 * Ids are ascii slugs `<board>.<name>`; the seed's subcategories keep the contract's ids
 * (`finance.investment-research`, `general.code`).
 */
import { SUBCATEGORIES, SynthesisMethod } from '@xyp/contracts';
import { editDistance } from './text';

/** The four methods (the enum of `@xyp/contracts`, one per synthesis stage). */
export { SynthesisMethod };
export const SYNTHESIS_METHODS: readonly SynthesisMethod[] = SynthesisMethod.options;

export type CategoryKind = 'finance' | 'general';

export interface Board {
  id: string;
  name: string;
  kind: CategoryKind;
}

/** The big boards: the seed's 理财, 保险, 信贷 and the others a finance assistant is asked about. */
export const BOARDS = [
  { id: 'wealth', name: '理财', kind: 'finance' },
  { id: 'insurance', name: '保险', kind: 'finance' },
  { id: 'credit', name: '信贷', kind: 'finance' },
  { id: 'securities', name: '证券', kind: 'finance' },
  { id: 'funds', name: '基金', kind: 'finance' },
  { id: 'banking', name: '银行', kind: 'finance' },
  { id: 'tax', name: '税务', kind: 'finance' },
  { id: 'compliance', name: '合规', kind: 'finance' },
  { id: 'futures', name: '期货', kind: 'finance' },
  { id: 'macro', name: '宏观经济', kind: 'finance' },
  { id: 'corporate', name: '公司金融', kind: 'finance' },
  { id: 'fintech', name: '金融科技', kind: 'finance' },
  /** The seed's finance evaluation subcategories: abilities that cut across the boards. */
  { id: 'finance', name: '金融综合', kind: 'finance' },
  /** The seed's general evaluation subcategories. */
  { id: 'general', name: '通用', kind: 'general' },
] as const satisfies readonly Board[];
export type BoardId = (typeof BOARDS)[number]['id'];

export interface SynthesisCategory {
  /** Ascii slug `<board>.<name>`; the seed's subcategories keep the contract's id. */
  id: string;
  /** Chinese name. */
  name: string;
  /** English label, for charts and English reports. */
  label: string;
  board: BoardId;
  kind: CategoryKind;
  method: SynthesisMethod;
  /** The seed evaluation subcategory (a `SUBCATEGORIES` id of `@xyp/contracts`) it rolls up to; its own id for those. */
  evalSubcategory: string;
}

type FineCategory = Omit<SynthesisCategory, 'kind'>;

/** The fine categories under the boards. */
const FINE_CATEGORIES: readonly FineCategory[] = [
  { id: 'wealth.products', name: '理财产品知识', label: 'wealth-management products', board: 'wealth', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'wealth.asset-allocation', name: '资产配置建议', label: 'asset allocation', board: 'wealth', method: 'ensemble', evalSubcategory: 'finance.understanding' },
  { id: 'wealth.retirement', name: '养老与退休规划', label: 'retirement planning', board: 'wealth', method: 'ensemble', evalSubcategory: 'finance.understanding' },
  { id: 'wealth.return-calculation', name: '收益与复利计算', label: 'return and compounding calculation', board: 'wealth', method: 'evol-instruct', evalSubcategory: 'finance.calculation' },
  { id: 'wealth.marketing-copy', name: '理财营销文案', label: 'wealth marketing copy', board: 'wealth', method: 'evol-instruct', evalSubcategory: 'finance.generation' },
  { id: 'insurance.products', name: '保险险种与条款', label: 'insurance products and terms', board: 'insurance', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'insurance.claims', name: '保险理赔咨询', label: 'insurance claims', board: 'insurance', method: 'ensemble', evalSubcategory: 'finance.understanding' },
  { id: 'insurance.premium-calculation', name: '保费与保障计算', label: 'premium and coverage calculation', board: 'insurance', method: 'evol-instruct', evalSubcategory: 'finance.calculation' },
  { id: 'credit.loan-products', name: '贷款产品知识', label: 'loan products', board: 'credit', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'credit.loan-calculation', name: '房贷与利息计算', label: 'mortgage and interest calculation', board: 'credit', method: 'evol-instruct', evalSubcategory: 'finance.calculation' },
  { id: 'credit.credit-report', name: '个人征信咨询', label: 'personal credit reports', board: 'credit', method: 'ensemble', evalSubcategory: 'finance.understanding' },
  { id: 'credit.risk-assessment', name: '企业信贷风险评估', label: 'corporate credit risk assessment', board: 'credit', method: 'expert-seeded', evalSubcategory: 'finance.business-analysis' },
  { id: 'securities.basics', name: '证券基础知识', label: 'securities basics', board: 'securities', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'securities.trading-rules', name: '证券交易规则', label: 'trading rules', board: 'securities', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'securities.research-reports', name: '研报解读', label: 'research report interpretation', board: 'securities', method: 'expert-seeded', evalSubcategory: 'finance.investment-research' },
  { id: 'securities.valuation', name: '估值与财务指标计算', label: 'valuation and ratio calculation', board: 'securities', method: 'evol-instruct', evalSubcategory: 'finance.calculation' },
  { id: 'securities.market-qa', name: '个股与行情问答', label: 'stocks and market questions', board: 'securities', method: 'ensemble', evalSubcategory: 'finance.understanding' },
  { id: 'funds.knowledge', name: '基金知识', label: 'fund knowledge', board: 'funds', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'funds.selection', name: '基金选择与定投', label: 'fund selection and regular investing', board: 'funds', method: 'ensemble', evalSubcategory: 'finance.understanding' },
  { id: 'funds.performance-calculation', name: '基金业绩与费用计算', label: 'fund performance and fee calculation', board: 'funds', method: 'evol-instruct', evalSubcategory: 'finance.calculation' },
  { id: 'banking.services', name: '银行业务咨询', label: 'banking services', board: 'banking', method: 'ensemble', evalSubcategory: 'finance.understanding' },
  { id: 'banking.forex', name: '外汇与跨境结算', label: 'foreign exchange and cross-border settlement', board: 'banking', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'banking.customer-service', name: '银行客服话术', label: 'bank customer-service replies', board: 'banking', method: 'evol-instruct', evalSubcategory: 'finance.generation' },
  { id: 'tax.policy', name: '税收政策知识', label: 'tax policy', board: 'tax', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'tax.calculation', name: '个税与企业税计算', label: 'income and corporate tax calculation', board: 'tax', method: 'evol-instruct', evalSubcategory: 'finance.calculation' },
  { id: 'compliance.regulations', name: '金融法规知识', label: 'financial regulations', board: 'compliance', method: 'selfqa', evalSubcategory: 'finance.compliance-risk' },
  { id: 'compliance.marketing-review', name: '营销内容合规审查', label: 'marketing compliance review', board: 'compliance', method: 'evol-instruct', evalSubcategory: 'finance.compliance-risk' },
  { id: 'compliance.case-analysis', name: '合规与反洗钱案例研判', label: 'compliance and AML case analysis', board: 'compliance', method: 'expert-seeded', evalSubcategory: 'finance.compliance-risk' },
  { id: 'futures.knowledge', name: '期货与衍生品知识', label: 'futures and derivatives', board: 'futures', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'futures.hedging-calculation', name: '套期保值与保证金计算', label: 'hedging and margin calculation', board: 'futures', method: 'evol-instruct', evalSubcategory: 'finance.calculation' },
  { id: 'macro.indicators', name: '宏观经济指标', label: 'macroeconomic indicators', board: 'macro', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'macro.policy-analysis', name: '货币与财政政策分析', label: 'monetary and fiscal policy analysis', board: 'macro', method: 'expert-seeded', evalSubcategory: 'finance.event-analysis' },
  { id: 'macro.event-analysis', name: '财经事件解读', label: 'financial news events', board: 'macro', method: 'expert-seeded', evalSubcategory: 'finance.event-analysis' },
  { id: 'corporate.financial-statements', name: '财务报表分析', label: 'financial statement analysis', board: 'corporate', method: 'expert-seeded', evalSubcategory: 'finance.business-analysis' },
  { id: 'corporate.financing', name: '融资与并购咨询', label: 'financing and M&A', board: 'corporate', method: 'ensemble', evalSubcategory: 'finance.business-analysis' },
  { id: 'corporate.capital-budgeting', name: '资本预算计算', label: 'capital budgeting (NPV, IRR)', board: 'corporate', method: 'evol-instruct', evalSubcategory: 'finance.calculation' },
  { id: 'fintech.knowledge', name: '金融科技知识', label: 'fintech', board: 'fintech', method: 'selfqa', evalSubcategory: 'finance.encyclopedia' },
  { id: 'fintech.digital-payments', name: '数字支付与数字人民币', label: 'digital payments and e-CNY', board: 'fintech', method: 'ensemble', evalSubcategory: 'finance.understanding' },
];

/** The method of each seed evaluation subcategory (by its contract id). */
const SUBCATEGORY_METHODS: Readonly<Record<string, SynthesisMethod>> = {
  'finance.investment-research': 'expert-seeded',
  'finance.compliance-risk': 'ensemble',
  'finance.encyclopedia': 'selfqa',
  'finance.understanding': 'ensemble',
  'finance.calculation': 'evol-instruct',
  'finance.generation': 'ensemble',
  'finance.event-analysis': 'expert-seeded',
  'finance.business-analysis': 'expert-seeded',
  'general.summarization': 'ensemble',
  'general.chitchat': 'ensemble',
  'general.creative-writing': 'ensemble',
  'general.reasoning': 'evol-instruct',
  'general.language-understanding': 'ensemble',
  'general.knowledge': 'selfqa',
  'general.instruction-following': 'evol-instruct',
  'general.safety': 'ensemble',
  'general.code': 'evol-instruct',
  'general.translation': 'ensemble',
  'general.calculation': 'evol-instruct',
};

function boardOf(id: string): Board {
  const board = BOARDS.find((b) => b.id === id);
  if (!board) throw new Error(`taxonomy: no board ${id}`);
  return board;
}

function subcategoryCategories(): SynthesisCategory[] {
  return SUBCATEGORIES.map((s) => {
    const method = SUBCATEGORY_METHODS[s.id];
    // A subcategory the contract adds needs its method here; fail at load, not in a run.
    if (method === undefined) throw new Error(`taxonomy: seed subcategory ${s.id} (${s.name}) has no synthesis method`);
    return { id: s.id, name: s.name, label: s.label, board: s.set, kind: s.set, method, evalSubcategory: s.id };
  });
}

/** Every category: the fine ones under their boards, then the seed's evaluation subcategories. */
export const TAXONOMY: readonly SynthesisCategory[] = [
  ...FINE_CATEGORIES.map((c) => ({ ...c, kind: boardOf(c.board).kind })),
  ...subcategoryCategories(),
];

const BY_ID = new Map(TAXONOMY.map((c) => [c.id, c] as const));
const BY_NAME = new Map(TAXONOMY.map((c) => [c.name, c] as const));
const BY_LABEL = new Map(TAXONOMY.map((c) => [c.label.toLowerCase(), c] as const));
if (BY_ID.size !== TAXONOMY.length || BY_NAME.size !== TAXONOMY.length) throw new Error('taxonomy: duplicate category id or name');

/** The category with this id, or undefined. */
export function categoryById(id: string): SynthesisCategory | undefined {
  return BY_ID.get(id);
}

/** The category with this Chinese name, or undefined. */
export function categoryByName(name: string): SynthesisCategory | undefined {
  return BY_NAME.get(name);
}

/** The categories a method synthesises. */
export function categoriesFor(method: SynthesisMethod): SynthesisCategory[] {
  return TAXONOMY.filter((c) => c.method === method);
}

/** A recipe named a category the taxonomy does not have. */
export class UnknownCategoryError extends Error {
  constructor(
    readonly input: string,
    /** Close categories (by edit distance or containment), best first; empty when none is close. */
    readonly suggestions: readonly SynthesisCategory[],
  ) {
    const close = suggestions.map((c) => `${c.id} (${c.name})`).join(', ');
    super(
      suggestions.length > 0
        ? `unknown synthesis category ${JSON.stringify(input)}; did you mean ${close}? A category is a taxonomy id, Chinese name or English label`
        : `unknown synthesis category ${JSON.stringify(input)}; valid ids: ${TAXONOMY.map((c) => c.id).join(', ')}`,
    );
    this.name = 'UnknownCategoryError';
  }
}

/** Up to five categories close to `input`: a name/id/label containing it or contained in it, or within edit distance ⌈40%⌉. */
function closeCategories(input: string): SynthesisCategory[] {
  const needle = input.trim().toLowerCase();
  if (needle.length === 0) return [];
  const scored: { category: SynthesisCategory; score: number }[] = [];
  for (const category of TAXONOMY) {
    let best = Infinity;
    for (const alias of [category.id, category.name, category.label.toLowerCase()]) {
      const contains = alias.includes(needle) || needle.includes(alias);
      const distance = editDistance(needle, alias);
      const limit = Math.max(1, Math.ceil(0.4 * Math.max([...needle].length, [...alias].length)));
      if (contains) best = Math.min(best, 0.5 * distance / Math.max([...alias].length, 1));
      else if (distance <= limit) best = Math.min(best, 1 + distance);
    }
    if (best < Infinity) scored.push({ category, score: best });
  }
  return scored.sort((a, b) => a.score - b.score || (a.category.id < b.category.id ? -1 : 1)).slice(0, 5).map((s) => s.category);
}

/**
 * The category `input` names: its id, Chinese name or English label (case and surrounding
 * space ignored). Throws `UnknownCategoryError` naming the input and the close categories (or,
 * when none is close, every valid id).
 */
export function resolveCategory(input: string): SynthesisCategory {
  const key = input.trim();
  const found = BY_ID.get(key) ?? BY_ID.get(key.toLowerCase()) ?? BY_NAME.get(key) ?? BY_LABEL.get(key.toLowerCase());
  if (found) return found;
  throw new UnknownCategoryError(input, closeCategories(input));
}

/** The synthesis method of a category (id, name, label or the category itself). */
export function methodFor(category: string | SynthesisCategory): SynthesisMethod {
  return (typeof category === 'string' ? resolveCategory(category) : category).method;
}
