/**
 * Generates the bilingual sample corpus `data/sample/corpus.jsonl` deterministically: the same
 * seed gives the same bytes. Documents are composed from template sentences over small
 * Chinese and English vocabularies (nothing is downloaded), in five categories with the length
 * profile of a continued-pretraining corpus: many short social-media posts, news of a few
 * hundred tokens, encyclopedia entries, long professional reports, and a few documents longer
 * than 16k Llama-3 tokens.
 *
 *   node -r ./tools/runtime/register.js tools/sample-data/generate-corpus.ts \
 *     [--seed 20240710] [--docs 1800] [--out data/sample/corpus.jsonl]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createRng, type Rng } from '@xyp/random';
import { argument } from './cli-args';

type Lang = 'zh' | 'en';

interface CategoryProfile {
  name: string;
  /** Share of the documents. */
  share: number;
  /** Probability that a document is Chinese. */
  zhShare: number;
  /** Median length in (approximate) tokens and the log-normal spread around it. */
  medianTokens: number;
  sigma: number;
  maxTokens: number;
}

const PROFILES: readonly CategoryProfile[] = [
  { name: 'social-media', share: 0.36, zhShare: 0.7, medianTokens: 45, sigma: 0.8, maxTokens: 900 },
  { name: 'news', share: 0.24, zhShare: 0.55, medianTokens: 320, sigma: 0.6, maxTokens: 3000 },
  { name: 'finance-encyclopedia', share: 0.14, zhShare: 0.65, medianTokens: 450, sigma: 0.85, maxTokens: 7000 },
  { name: 'general', share: 0.16, zhShare: 0.5, medianTokens: 200, sigma: 1.0, maxTokens: 5000 },
  { name: 'professional', share: 0.1, zhShare: 0.5, medianTokens: 1400, sigma: 0.8, maxTokens: 14000 },
];

/** Documents longer than the largest bucket (16,384 tokens): [category, language, approximate tokens]. */
const LONG_DOCUMENTS: readonly [string, Lang, number][] = [
  ['professional', 'zh', 19000],
  ['professional', 'en', 24000],
  ['finance-encyclopedia', 'zh', 17500],
  ['professional', 'zh', 36000],
];

/** Characters per Llama-3 token, measured on this generator's output (approximate). */
const CHARS_PER_TOKEN: Record<Lang, number> = { zh: 1.25, en: 4.6 };

const V = {
  zhCompany: ['招商银行', '中国平安', '贵州茅台', '宁德时代', '比亚迪', '工商银行', '中信证券', '腾讯控股', '美的集团', '长江电力', '万科企业', '东方财富', '紫金矿业', '海天味业'],
  enCompany: ['Apple', 'JPMorgan Chase', 'Berkshire Hathaway', 'Tesla', 'Goldman Sachs', 'Microsoft', 'Nvidia', 'BlackRock', 'Visa', 'ExxonMobil', 'HSBC', 'Toyota', 'Alibaba', 'Samsung'],
  zhIndex: ['沪深300指数', '上证综指', '创业板指', '恒生指数', '中证500指数', '科创50指数', '深证成指'],
  enIndex: ['S&P 500', 'Nasdaq Composite', 'Dow Jones Industrial Average', 'FTSE 100', 'Nikkei 225', 'Euro Stoxx 50', 'MSCI Emerging Markets'],
  zhTerm: ['市盈率', '净资产收益率', '可转换债券', '信用违约互换', '久期', '夏普比率', '资本充足率', '量化宽松', '逆回购', '存款准备金率', '收益率曲线', '做市商制度', '融资融券', '资产证券化', '期权隐含波动率', '风险价值', '流动性覆盖率', '商誉减值'],
  enTerm: ['price-to-earnings ratio', 'return on equity', 'convertible bond', 'credit default swap', 'duration', 'Sharpe ratio', 'capital adequacy ratio', 'quantitative easing', 'reverse repo', 'reserve requirement ratio', 'yield curve', 'market maker', 'margin trading', 'securitization', 'implied volatility', 'value at risk', 'liquidity coverage ratio', 'goodwill impairment'],
  zhInstitution: ['中国人民银行', '中国证监会', '国家金融监督管理总局', '美联储', '欧洲央行', '国际货币基金组织', '上海证券交易所', '深圳证券交易所'],
  enInstitution: ['the Federal Reserve', 'the European Central Bank', 'the SEC', 'the IMF', 'the Bank of England', "the People's Bank of China", 'the Basel Committee', 'the Bank of Japan'],
  zhSector: ['新能源汽车', '半导体', '白酒', '银行', '保险', '房地产', '医药生物', '光伏', '消费电子', '有色金属', '券商', '人工智能'],
  enSector: ['electric vehicles', 'semiconductors', 'regional banks', 'insurance', 'real estate', 'biotech', 'solar', 'consumer electronics', 'industrial metals', 'asset management', 'artificial intelligence', 'utilities'],
  zhCity: ['上海', '北京', '深圳', '香港', '杭州', '成都', '武汉', '广州'],
  enCity: ['New York', 'London', 'Singapore', 'Frankfurt', 'Tokyo', 'Hong Kong', 'Chicago', 'Zurich'],
  zhMood: ['谨慎乐观', '观望情绪浓厚', '分歧明显', '普遍看好', '担忧加剧', '情绪回暖'],
  enMood: ['cautiously optimistic', 'risk-averse', 'divided', 'broadly bullish', 'increasingly nervous', 'more constructive'],
  zhTopic: ['宏观经济', '货币政策', '资产配置', '风险管理', '公司治理', '信息披露', '财富管理', '跨境投资', '绿色金融', '养老金融'],
  enTopic: ['macroeconomics', 'monetary policy', 'asset allocation', 'risk management', 'corporate governance', 'disclosure', 'wealth management', 'cross-border investment', 'green finance', 'retirement savings'],
  zhGeneral: ['城市的早高峰', '周末的菜市场', '一本关于历史的书', '家乡的秋天', '一次徒步旅行', '社区图书馆', '新开的咖啡馆', '孩子的科学作业'],
  enGeneral: ['the morning commute', 'a farmers market', 'a history book', 'autumn in the countryside', 'a long hike', 'the public library', 'a new coffee shop', 'a school science project'],
  emoji: ['📈', '📉', '💰', '🤔', '🔥', '😂', '👍', '🚀', '😭', '🙏'],
  zhSlang: ['绝了', '冲鸭', '稳住', '割肉了', '躺平', '上车', '格局打开', '血亏', '真香'],
  enSlang: ['to the moon', 'diamond hands', 'buy the dip', 'ngl', 'lol', 'HODL', 'this is fine', 'bagholder vibes'],
};

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.nextInt(items.length)];
}

function num(rng: Rng, min: number, max: number, digits = 0): string {
  return (min + rng.nextFloat() * (max - min)).toFixed(digits);
}

/** Standard normal draw (Box–Muller). */
function gaussian(rng: Rng): number {
  const u = 1 - rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat());
}

type Sentence = (rng: Rng) => string;

const ZH: Record<string, Sentence[]> = {
  'social-media': [
    (r) => `${pick(r, V.zhCompany)}今天又${pick(r, ['涨', '跌'])}了${num(r, 1, 9, 1)}%，${pick(r, V.zhSlang)}${pick(r, V.emoji)}`,
    (r) => `有没有人跟我一样重仓${pick(r, V.zhSector)}的？${pick(r, V.zhSlang)}，明天继续${pick(r, ['加仓', '观望', '止损'])}。`,
    (r) => `#${pick(r, V.zhIndex)}# 收盘${num(r, 2800, 4200, 2)}点，${pick(r, V.zhMood)}。`,
    (r) => `刚看完${pick(r, V.zhInstitution)}的发布会，说实话没太看懂${pick(r, V.zhTerm)}到底会怎么变${pick(r, V.emoji)}`,
    (r) => `工资到账第一件事：定投${pick(r, V.zhIndex)}，第${num(r, 2, 60)}个月了，${pick(r, V.zhSlang)}。`,
    (r) => `${pick(r, V.zhCity)}的房价${pick(r, ['又松动了', '稳住了', '还在跌'])}，朋友说现在是${pick(r, ['上车', '观望'])}的好时候？`,
  ],
  news: [
    (r) => `${pick(r, V.zhInstitution)}${num(r, 1, 28)}日宣布，将${pick(r, ['下调', '上调', '维持'])}${pick(r, V.zhTerm)}，市场人士认为此举旨在稳定${pick(r, V.zhTopic)}预期。`,
    (r) => `截至收盘，${pick(r, V.zhIndex)}报${num(r, 2800, 4200, 2)}点，${pick(r, ['上涨', '下跌'])}${num(r, 0.1, 3, 2)}%，两市成交额合计${num(r, 6000, 15000)}亿元。`,
    (r) => `${pick(r, V.zhCompany)}发布${num(r, 2019, 2025)}年第${num(r, 1, 4)}季度财报，营业收入同比增长${num(r, -20, 45, 1)}%，净利润达到${num(r, 5, 900, 1)}亿元。`,
    (r) => `分析师指出，${pick(r, V.zhSector)}板块近期资金净流入${num(r, 10, 300, 1)}亿元，投资者情绪${pick(r, V.zhMood)}。`,
    (r) => `据${pick(r, V.zhCity)}本地媒体报道，当地出台多项措施支持${pick(r, V.zhSector)}产业发展，涉及财政补贴与融资便利。`,
    (r) => `业内人士表示，未来一段时间${pick(r, V.zhTopic)}仍将面临不确定性，建议投资者关注${pick(r, V.zhTerm)}的变化。`,
  ],
  'finance-encyclopedia': [
    (r) => `${pick(r, V.zhTerm)}是衡量${pick(r, V.zhTopic)}的重要指标之一，通常用于比较不同资产或机构之间的表现。`,
    (r) => `在计算${pick(r, V.zhTerm)}时，需要注意数据口径的一致性，例如是否剔除非经常性损益以及会计期间的选择。`,
    (r) => `历史上，${pick(r, V.zhInstitution)}曾多次调整与${pick(r, V.zhTerm)}相关的监管要求，以应对${pick(r, V.zhTopic)}领域出现的新风险。`,
    (r) => `与${pick(r, V.zhTerm)}密切相关的概念包括${pick(r, V.zhTerm)}和${pick(r, V.zhTerm)}，三者共同构成了分析框架的基础。`,
    (r) => `举例来说，若某公司的${pick(r, V.zhTerm)}为${num(r, 0.5, 40, 2)}，而行业平均水平为${num(r, 0.5, 40, 2)}，则说明其相对估值存在明显差异。`,
    (r) => `学术界对${pick(r, V.zhTerm)}的研究始于二十世纪${pick(r, ['五十', '六十', '七十', '八十'])}年代，此后逐渐被业界广泛采用。`,
  ],
  professional: [
    (r) => `本报告认为，${pick(r, V.zhSector)}行业在未来${num(r, 1, 5)}年内将保持${num(r, 3, 25, 1)}%左右的复合增长率，主要驱动因素包括技术进步与政策支持。`,
    (r) => `从资产负债表看，${pick(r, V.zhCompany)}的资产负债率为${num(r, 20, 90, 1)}%，经营性现金流净额${num(r, -50, 600, 1)}亿元，财务结构总体稳健。`,
    (r) => `风险提示：宏观经济下行、${pick(r, V.zhTerm)}大幅波动、行业竞争加剧以及${pick(r, V.zhTopic)}政策变化可能对盈利预测产生不利影响。`,
    (r) => `我们采用现金流折现模型进行估值，假设加权平均资本成本为${num(r, 6, 11, 1)}%，永续增长率为${num(r, 1, 3.5, 1)}%，得到目标价${num(r, 10, 400, 2)}元。`,
    (r) => `根据${pick(r, V.zhInstitution)}最新披露的数据，${pick(r, V.zhTerm)}已连续${num(r, 2, 12)}个月处于历史区间的${pick(r, ['高位', '低位', '中位'])}。`,
    (r) => `在压力测试情景下，若${pick(r, V.zhTerm)}上升${num(r, 50, 300)}个基点，组合的${pick(r, V.zhTerm)}将下降约${num(r, 1, 15, 1)}%。`,
  ],
  general: [
    (r) => `${pick(r, V.zhGeneral)}总让人想起很多往事，${pick(r, V.zhCity)}的街道在雨后显得格外安静。`,
    (r) => `最近读了一篇关于${pick(r, V.zhTopic)}的文章，作者用通俗的语言解释了复杂的问题。`,
    (r) => `周末和朋友去了${pick(r, V.zhCity)}，顺便聊起了${pick(r, V.zhGeneral)}，大家都有不同的看法。`,
    () => `生活中的很多决定其实和投资一样，需要权衡收益与风险，也需要一点耐心。`,
    (r) => `天气预报说明天${pick(r, ['有雨', '转晴', '降温'])}，${pick(r, V.zhGeneral)}的计划可能要改一改了。`,
  ],
};

const EN: Record<string, Sentence[]> = {
  'social-media': [
    (r) => `${pick(r, V.enCompany)} ${pick(r, ['ripping', 'dumping'])} ${num(r, 1, 9, 1)}% today, ${pick(r, V.enSlang)} ${pick(r, V.emoji)}`,
    (r) => `anyone else all in on ${pick(r, V.enSector)}? ${pick(r, V.enSlang)}`,
    (r) => `#${pick(r, V.enIndex).replace(/\W/g, '')} closed at ${num(r, 3000, 19000, 2)}. feeling ${pick(r, V.enMood)} tbh`,
    (r) => `just watched ${pick(r, V.enInstitution)} presser and still no idea what happens to the ${pick(r, V.enTerm)} ${pick(r, V.emoji)}`,
    (r) => `month ${num(r, 2, 60)} of DCA into the ${pick(r, V.enIndex)}. ${pick(r, V.enSlang)}.`,
  ],
  news: [
    (r) => `${pick(r, V.enInstitution)} said on ${pick(r, ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday'])} it would ${pick(r, ['cut', 'raise', 'hold'])} its key rate, citing ${pick(r, V.enTopic)} conditions.`,
    (r) => `The ${pick(r, V.enIndex)} ${pick(r, ['rose', 'fell'])} ${num(r, 0.1, 3, 2)}% to ${num(r, 3000, 19000, 2)}, with ${pick(r, V.enSector)} leading the move.`,
    (r) => `${pick(r, V.enCompany)} reported quarterly revenue of $${num(r, 2, 120, 1)} billion, ${pick(r, ['up', 'down'])} ${num(r, 1, 30, 1)}% from a year earlier.`,
    (r) => `Analysts in ${pick(r, V.enCity)} said investors remained ${pick(r, V.enMood)} ahead of new data on ${pick(r, V.enTopic)}.`,
    (r) => `Traders pointed to the ${pick(r, V.enTerm)} as the key signal to watch in the coming weeks.`,
  ],
  'finance-encyclopedia': [
    (r) => `The ${pick(r, V.enTerm)} is a standard measure in ${pick(r, V.enTopic)}, used to compare assets or institutions on a like-for-like basis.`,
    (r) => `When computing the ${pick(r, V.enTerm)}, analysts must keep definitions consistent, for example whether one-off items are excluded.`,
    (r) => `${pick(r, V.enInstitution)} has revised rules related to the ${pick(r, V.enTerm)} several times in response to new risks in ${pick(r, V.enTopic)}.`,
    (r) => `Closely related concepts include the ${pick(r, V.enTerm)} and the ${pick(r, V.enTerm)}, which together form the basis of the framework.`,
    (r) => `For example, a firm with a ${pick(r, V.enTerm)} of ${num(r, 0.5, 40, 2)} against an industry average of ${num(r, 0.5, 40, 2)} trades at a clear relative discount or premium.`,
  ],
  professional: [
    (r) => `We expect the ${pick(r, V.enSector)} industry to compound at roughly ${num(r, 3, 25, 1)}% a year over the next ${num(r, 2, 6)} years, driven by technology and policy support.`,
    (r) => `${pick(r, V.enCompany)} ended the period with a debt-to-assets ratio of ${num(r, 20, 90, 1)}% and operating cash flow of $${num(r, -5, 60, 1)} billion.`,
    (r) => `Key risks include a macro slowdown, sharp moves in the ${pick(r, V.enTerm)}, intensifying competition and changes in ${pick(r, V.enTopic)} policy.`,
    (r) => `Our discounted cash flow model assumes a WACC of ${num(r, 6, 11, 1)}% and terminal growth of ${num(r, 1, 3.5, 1)}%, implying a target price of $${num(r, 10, 900, 2)}.`,
    (r) => `Under the stress scenario, a ${num(r, 50, 300)} basis point rise in the ${pick(r, V.enTerm)} reduces portfolio value by about ${num(r, 1, 15, 1)}%.`,
  ],
  general: [
    (r) => `${pick(r, V.enGeneral)} always brings back memories, and the streets of ${pick(r, V.enCity)} felt quiet after the rain.`,
    (r) => `I recently read an essay on ${pick(r, V.enTopic)} that explained a hard problem in plain words.`,
    () => `Many everyday decisions are like investing: you weigh return against risk and need some patience.`,
    (r) => `The forecast says ${pick(r, ['rain', 'sunshine', 'a cold front'])} tomorrow, so plans for ${pick(r, V.enGeneral)} may change.`,
  ],
};

function composeText(rng: Rng, category: string, lang: Lang, tokens: number): string {
  const sentences = (lang === 'zh' ? ZH : EN)[category];
  const targetChars = Math.max(8, Math.round(tokens * CHARS_PER_TOKEN[lang]));
  const parts: string[] = [];
  let chars = 0;
  let sinceBreak = 0;
  while (chars < targetChars) {
    const sentence = pick(rng, sentences)(rng);
    const separator = parts.length === 0 ? '' : sinceBreak >= 3 + rng.nextInt(4) ? '\n\n' : lang === 'zh' ? '' : ' ';
    if (separator === '\n\n') sinceBreak = 0;
    parts.push(separator, sentence);
    chars += separator.length + sentence.length;
    sinceBreak++;
  }
  return parts.join('');
}

function drawTokens(rng: Rng, profile: CategoryProfile): number {
  const tokens = Math.round(profile.medianTokens * Math.exp(profile.sigma * gaussian(rng)));
  return Math.min(profile.maxTokens, Math.max(5, tokens));
}

export interface GenerateOptions {
  seed: number;
  docs: number;
}

/** The corpus as JSONL text. Pure function of the options. */
export function generateCorpus(options: GenerateOptions): string {
  const rng = createRng(options.seed);
  const lines: string[] = [];
  const counters = new Map<string, number>();
  const longAt = new Map(LONG_DOCUMENTS.map((entry, i) => [Math.floor(((i + 0.5) * options.docs) / LONG_DOCUMENTS.length), entry]));
  for (let i = 0; i < options.docs; i++) {
    let category: string;
    let lang: Lang;
    let tokens: number;
    const long = longAt.get(i);
    if (long !== undefined) {
      [category, lang, tokens] = long;
    } else {
      let u = rng.nextFloat();
      const profile = PROFILES.find((candidate) => (u -= candidate.share) < 0) ?? PROFILES[PROFILES.length - 1];
      category = profile.name;
      lang = rng.nextFloat() < profile.zhShare ? 'zh' : 'en';
      tokens = drawTokens(rng, profile);
    }
    const n = (counters.get(category) ?? 0) + 1;
    counters.set(category, n);
    const id = `${category}-${String(n).padStart(5, '0')}`;
    lines.push(JSON.stringify({ id, text: composeText(rng, category, lang, tokens), category, lang }));
  }
  return `${lines.join('\n')}\n`;
}

if (require.main === module) {
  const seed = Number(argument('seed', '20240710'));
  const docs = Number(argument('docs', '1800'));
  const out = resolve(argument('out', 'data/sample/corpus.jsonl'));
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(docs) || docs < 1) {
    process.stderr.write('usage: generate-corpus.ts [--seed N] [--docs N] [--out FILE]\n');
    process.exit(2);
  }
  const text = generateCorpus({ seed, docs });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
  process.stderr.write(`wrote ${docs} documents, ${(Buffer.byteLength(text) / 1e6).toFixed(2)} MB to ${out}\n`);
}
