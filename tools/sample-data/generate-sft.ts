/**
 * Generates the sample SFT conversations `data/sample/sft.jsonl` deterministically: the same seed
 * gives the same bytes. One chat per line, `{id, category, messages, source: "sample"}`, mostly
 * Chinese finance content: the 8 finance subcategories of `SUBCATEGORIES` and 4 general ones
 * (日常交流 as multi-turn dialogues, 内容摘要, 推理, 翻译能力). Nothing is downloaded: every
 * conversation is composed from templates over small vocabularies.
 *
 * The categories differ in difficulty by construction, not by tuning to any training result:
 *
 * - regular (one answer skeleton per template, slots filled with drawn or computed values):
 *   `finance.calculation` (the numbers are computed here: compound and simple interest, P/E,
 *   current yield, yield to maturity, loan payments, dividend yield, CAGR), `finance.compliance-risk`
 *   (one rule per scenario), `general.reasoning` (worked arithmetic), `general.summarization`
 *   (the summary restates the passage's facts), `general.translation` (sentence templates in pairs);
 * - medium: `finance.encyclopedia` (a fixed definition per term, many phrasings of the question),
 *   `finance.understanding` (a fixed core per scenario plus drawn clauses), `general.chitchat`
 *   (multi-turn, replies drawn from pools);
 * - varied: `finance.generation`, `finance.event-analysis`, `finance.business-analysis`,
 *   `finance.investment-research` (free-form answers: an opening, a random number of points in
 *   random order from large pools, varied connectives and a closing).
 *
 * A few conversations (日常交流, 合规与风险管理, 投研应用能力) start with a system prompt. Every
 * final assistant turn is `MIN_RESPONSE_CHARS`–`MAX_RESPONSE_CHARS` characters, and every first
 * user message is different, so a split by prompt hash holds out new prompts.
 *
 *   node -r ./tools/runtime/register.js tools/sample-data/generate-sft.ts \
 *     [--seed 20240710] [--per-category 72] [--out data/sample/sft.jsonl]
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { resolveSubcategory } from '@xyp/contracts';
import { createRng, deriveSeed, type Rng } from '@xyp/random';
import { argument } from './cli-args';

export const GENERATOR = 'tools/sample-data/generate-sft.ts';
export const DEFAULT_SEED = 20240710;
export const DEFAULT_PER_CATEGORY = 72;
/** Bounds, in characters (code points), of every conversation's final assistant turn. */
export const MIN_RESPONSE_CHARS = 60;
export const MAX_RESPONSE_CHARS = 300;

export type Role = 'system' | 'user' | 'assistant';
export interface Message {
  role: Role;
  content: string;
}
export interface SampleConversation {
  id: string;
  category: string;
  messages: Message[];
  source: 'sample';
}

type Make = (r: Rng) => Message[];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function pick<T>(r: Rng, items: readonly T[]): T {
  return items[r.nextInt(items.length)];
}

/** `k` different items in random order. */
function pickSome<T>(r: Rng, items: readonly T[], k: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  for (let i = 0; i < k && pool.length > 0; i++) out.push(pool.splice(r.nextInt(pool.length), 1)[0]);
  return out;
}

/** Integer in [lo, hi]. */
function int(r: Rng, lo: number, hi: number): number {
  return lo + r.nextInt(hi - lo + 1);
}

/** A multiple of `step` in [lo, hi] (both multiples of step), as a number with step's decimals. */
function stepped(r: Rng, lo: number, hi: number, step: number): number {
  const n = Math.round((hi - lo) / step);
  return Number((lo + step * r.nextInt(n + 1)).toFixed(6));
}

/** Fixed decimals, always shown (`12.50`): calculation answers keep their precision visible. */
function fixed(x: number, digits = 2): string {
  return x.toFixed(digits);
}

/** Rounded to `digits` decimals without trailing zeros (`3.5`, `4`). */
function num(x: number, digits = 2): string {
  return String(Number(x.toFixed(digits)));
}

const user = (content: string): Message => ({ role: 'user', content });
const assistant = (content: string): Message => ({ role: 'assistant', content });
const system = (content: string): Message => ({ role: 'system', content });

const SYSTEM_PROMPTS = [
  '你是轩辕，一个专业、严谨的金融助手。回答要准确，必要时提示风险。',
  '你是一名银行的智能客服，请用简洁、友好的中文回答客户的问题。',
  '你是证券公司的合规助理。请依据监管规定回答，不得承诺收益。',
  '你是一位资深行业研究员，请给出有依据、有风险提示的分析。',
];

/** Prepends one of the system prompts in about `share` of the conversations. */
function maybeSystem(r: Rng, share: number, messages: Message[], prompts: readonly string[] = SYSTEM_PROMPTS): Message[] {
  return r.nextFloat() < share ? [system(pick(r, prompts)), ...messages] : messages;
}

const V = {
  company: ['招商银行', '中国平安', '贵州茅台', '宁德时代', '比亚迪', '工商银行', '中信证券', '美的集团', '长江电力', '海天味业', '紫金矿业', '东方财富', '恒瑞医药', '隆基绿能', '万华化学', '海尔智家'],
  bank: ['招商银行', '工商银行', '建设银行', '农业银行', '中国银行', '交通银行', '兴业银行', '平安银行'],
  product: ['货币基金', '银行理财', '可转债基金', '指数基金', '黄金ETF', '债券基金', '混合基金', '养老目标基金'],
  name: ['小王', '小李', '小张', '小赵', '小陈', '小刘', '小周', '小吴', '老孙', '老何'],
  industry: ['新能源汽车', '半导体', '白酒', '银行', '保险', '光伏', '创新药', '消费电子', '证券', '家电', '煤炭', '军工'],
  city: ['上海', '北京', '深圳', '杭州', '成都', '武汉', '广州', '南京'],
  quarter: ['一季度', '二季度', '三季度', '四季度', '上半年', '前三季度'],
};

/** Chinese company names and their English names, for the translation templates. */
const COMPANY_EN: readonly [string, string][] = [
  ['招商银行', 'China Merchants Bank'],
  ['中国平安', 'Ping An Insurance'],
  ['贵州茅台', 'Kweichow Moutai'],
  ['宁德时代', 'CATL'],
  ['比亚迪', 'BYD'],
  ['工商银行', 'ICBC'],
  ['中信证券', 'CITIC Securities'],
  ['美的集团', 'Midea Group'],
  ['长江电力', 'China Yangtze Power'],
  ['紫金矿业', 'Zijin Mining'],
];

// ---------------------------------------------------------------------------------------------
// Calculations (金融领域计算): the formulas, written once and used by the templates and the spec
// ---------------------------------------------------------------------------------------------

/** Future value with annual compounding: P(1 + r)^n. */
export function compoundValue(principal: number, annualRate: number, years: number): number {
  return principal * (1 + annualRate) ** years;
}

/** Future value with simple interest: P(1 + r·n). */
export function simpleValue(principal: number, annualRate: number, years: number): number {
  return principal * (1 + annualRate * years);
}

/** Price of a bond with annual coupons: Σ_{t=1..n} C/(1+y)^t + F/(1+y)^n. */
export function bondPrice(face: number, couponRate: number, years: number, yieldRate: number): number {
  let price = 0;
  for (let t = 1; t <= years; t++) price += (face * couponRate) / (1 + yieldRate) ** t;
  return price + face / (1 + yieldRate) ** years;
}

/** Yield to maturity of an annual-coupon bond at `price`, by bisection on [-0.99, 1] (price falls as yield rises). */
export function yieldToMaturity(face: number, couponRate: number, years: number, price: number): number {
  let lo = -0.99;
  let hi = 1;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (bondPrice(face, couponRate, years, mid) > price) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Monthly payment of an amortizing loan (等额本息): L·i(1+i)^N / ((1+i)^N − 1), i the monthly rate. */
export function monthlyPayment(loan: number, annualRate: number, years: number): number {
  const i = annualRate / 12;
  const n = years * 12;
  const growth = (1 + i) ** n;
  return (loan * i * growth) / (growth - 1);
}

/** Compound annual growth rate from `start` to `end` over `years`: (end/start)^(1/years) − 1. */
export function cagr(start: number, end: number, years: number): number {
  return (end / start) ** (1 / years) - 1;
}

const CALCULATION: Record<string, Make> = {
  compound: (r) => {
    const p = int(r, 1, 50) * 1000;
    const rate = stepped(r, 1.5, 6, 0.25);
    const n = int(r, 2, 10);
    const fv = compoundValue(p, rate / 100, n);
    const name = pick(r, V.name);
    const where = pick(r, [`存入银行，年利率${rate}%`, `买入一款年化收益率${rate}%的产品`, `投资一笔年化${rate}%的理财`]);
    return [
      user(`${name}将${p}元${where}，按年复利计息，${n}年后本息合计多少？`),
      assistant(`复利终值公式：FV = P × (1 + r)^n。代入P = ${p}元，r = ${rate}%，n = ${n}年，得FV = ${p} × ${fixed(1 + rate / 100, 4)}^${n} ≈ ${fixed(fv)}元。答：${n}年后本息合计约${fixed(fv)}元，其中利息约${fixed(fv - p)}元。`),
    ];
  },
  simple: (r) => {
    const p = int(r, 1, 50) * 1000;
    const rate = stepped(r, 1.5, 4.5, 0.05);
    const n = int(r, 1, 5);
    const fv = simpleValue(p, rate / 100, n);
    return [
      user(`一笔${p}元的${n}年期定期存款，年利率${rate}%，按单利计息，到期本息合计多少？`),
      assistant(`单利公式：FV = P × (1 + r × n)。代入P = ${p}元，r = ${rate}%，n = ${n}年，得利息 = ${p} × ${rate}% × ${n} = ${fixed(fv - p)}元。答：到期本息合计${fixed(fv)}元。`),
    ];
  },
  pe: (r) => {
    const co = pick(r, V.company);
    const price = stepped(r, 5, 300, 0.01);
    const eps = stepped(r, 0.2, 12, 0.01);
    const pe = price / eps;
    return [
      user(`${co}当前股价${fixed(price)}元，每股收益${fixed(eps)}元，它的市盈率是多少？`),
      assistant(`市盈率公式：PE = 股价 ÷ 每股收益。代入股价${fixed(price)}元，每股收益${fixed(eps)}元，得PE = ${fixed(price)} ÷ ${fixed(eps)} ≈ ${fixed(pe)}倍。答：${co}的市盈率约为${fixed(pe)}倍。`),
    ];
  },
  'current-yield': (r) => {
    const coupon = stepped(r, 2, 6, 0.1);
    const price = stepped(r, 92, 108, 0.5);
    const cy = (coupon / price) * 100;
    return [
      user(`一只面值100元的债券，票面利率${num(coupon, 1)}%，每年付息一次，现价${fixed(price)}元，当期收益率是多少？`),
      assistant(`当期收益率公式：CY = 年利息 ÷ 现价。年利息 = 100 × ${num(coupon, 1)}% = ${fixed(coupon)}元，代入得CY = ${fixed(coupon)} ÷ ${fixed(price)} ≈ ${fixed(cy)}%。答：该债券的当期收益率约为${fixed(cy)}%。`),
    ];
  },
  ytm: (r) => {
    const coupon = stepped(r, 2, 6, 0.5);
    const years = int(r, 2, 8);
    const price = stepped(r, 94, 106, 0.5);
    const y = yieldToMaturity(100, coupon / 100, years, price) * 100;
    return [
      user(`面值100元、票面利率${num(coupon, 1)}%、每年付息、剩余${years}年到期的债券，现价${fixed(price)}元，到期收益率约为多少？`),
      assistant(`到期收益率y满足：价格 = Σ 年利息/(1 + y)^t + 面值/(1 + y)^n。代入年利息${fixed(coupon)}元，n = ${years}，价格${fixed(price)}元，数值求解得y ≈ ${fixed(y)}%。答：到期收益率约为${fixed(y)}%，${price < 100 ? '折价买入，高于' : price > 100 ? '溢价买入，低于' : '平价买入，等于'}票面利率。`),
    ];
  },
  mortgage: (r) => {
    const loan = int(r, 20, 300) * 10000;
    const rate = stepped(r, 3, 5, 0.05);
    const years = pick(r, [5, 10, 15, 20, 25, 30]);
    const m = monthlyPayment(loan, rate / 100, years);
    return [
      user(`贷款${loan / 10000}万元，年利率${rate}%，期限${years}年，等额本息还款，每月月供多少？`),
      assistant(`等额本息公式：月供 = L × i × (1 + i)^N ÷ ((1 + i)^N - 1)。代入L = ${loan}元，i = ${rate}% ÷ 12，N = ${years * 12}期，得月供 ≈ ${fixed(m)}元。答：每月月供约${fixed(m)}元，总利息约${fixed(m * years * 12 - loan)}元。`),
    ];
  },
  'dividend-yield': (r) => {
    const co = pick(r, V.company);
    const dps = stepped(r, 0.1, 5, 0.05);
    const price = stepped(r, 4, 120, 0.01);
    const dy = (dps / price) * 100;
    return [
      user(`${co}每股派发现金红利${fixed(dps)}元，股价${fixed(price)}元，股息率是多少？`),
      assistant(`股息率公式：股息率 = 每股分红 ÷ 股价。代入每股分红${fixed(dps)}元，股价${fixed(price)}元，得股息率 = ${fixed(dps)} ÷ ${fixed(price)} ≈ ${fixed(dy)}%。答：${co}的股息率约为${fixed(dy)}%。`),
    ];
  },
  cagr: (r) => {
    const co = pick(r, V.company);
    const start = int(r, 20, 400);
    const years = int(r, 2, 6);
    const end = Math.round(start * (1 + stepped(r, 0.1, 1.5, 0.05)));
    const g = cagr(start, end, years) * 100;
    return [
      user(`${co}营收从${start}亿元增长到${end}亿元，用了${years}年，年复合增长率是多少？`),
      assistant(`年复合增长率公式：CAGR = (期末值 ÷ 期初值)^(1/n) - 1。代入期初${start}亿元，期末${end}亿元，n = ${years}年，得CAGR = (${end} ÷ ${start})^(1/${years}) - 1 ≈ ${fixed(g)}%。答：年复合增长率约为${fixed(g)}%。`),
    ];
  },
};

// ---------------------------------------------------------------------------------------------
// Compliance (合规与风险管理): one rule per scenario
// ---------------------------------------------------------------------------------------------

const COMPLIANCE: Record<string, Make> = {
  guarantee: (r) => {
    const bank = pick(r, V.bank);
    const product = pick(r, V.product);
    return maybeSystem(r, 0.2, [
      user(pick(r, [`我是${bank}的理财经理，客户问${product}能不能保本，我可以说“保证不亏”吗？`, `在${bank}推销${product}时，能向客户承诺保本保收益吗？`])),
      assistant(`不可以。根据资管新规，金融机构不得承诺保本保收益，销售${product}时应如实揭示风险，不得夸大收益或误导客户。建议说明产品风险等级，并提示过往业绩不代表未来表现。`),
    ]);
  },
  insider: (r) => {
    const co = pick(r, V.company);
    const who = pick(r, ['朋友', '亲戚', '同学', '前同事']);
    return maybeSystem(r, 0.2, [
      user(pick(r, [`我${who}在${co}任职，提前告诉我公司要发布重大利好，我可以先买入吗？`, `${who}透露${co}下周公告重组，我现在买股票算违规吗？`])),
      assistant(`不可以，这属于内幕交易。根据《证券法》，利用尚未公开的重大信息买卖${co}股票是违法行为，可能被没收违法所得并处以罚款，情节严重的将追究刑事责任。请等信息依法公开披露后再独立决策。`),
    ]);
  },
  suitability: (r) => {
    const c = int(r, 1, 5);
    const p = int(r, 1, 5);
    const product = pick(r, V.product);
    const ok = p <= c;
    return maybeSystem(r, 0.2, [
      user(`风险承受能力为C${c}的客户想购买风险等级为R${p}的${product}，可以销售吗？`),
      assistant(
        ok
          ? `可以。按照投资者适当性管理要求，产品风险等级应不高于客户的风险承受能力。R${p}不高于C${c}，属于匹配销售，但仍需充分揭示${product}的风险并留存记录。`
          : `不应销售。按照投资者适当性管理要求，产品风险等级应不高于客户的风险承受能力。R${p}高于C${c}，属于风险不匹配，应拒绝销售或引导客户选择R${c}及以下的产品。`,
      ),
    ]);
  },
  'large-cash': (r) => {
    const amount = int(r, 1, 20);
    const bank = pick(r, V.bank);
    const ok = amount >= 5;
    return maybeSystem(r, 0.2, [
      user(`客户在${bank}柜台单笔存入现金${amount}万元，需要提交大额交易报告吗？`),
      assistant(
        ok
          ? `需要。按照反洗钱规定，当日单笔或累计人民币现金交易5万元以上的，金融机构应提交大额交易报告。本笔${amount}万元达到标准，应在规定时限内报送，并做好客户身份识别。`
          : `单笔${amount}万元未达到大额标准。按照反洗钱规定，当日单笔或累计人民币现金交易5万元以上的才需提交大额交易报告。但若当日累计达到5万元，或交易存在可疑特征，仍应报告。`,
      ),
    ]);
  },
  privacy: (r) => {
    const bank = pick(r, V.bank);
    const who = pick(r, ['保险代理人', '房产中介', '合作的营销公司', '朋友开的贷款公司']);
    return maybeSystem(r, 0.2, [
      user(`我在${bank}工作，${who}想要一份我们的客户名单和电话，可以给吗？`),
      assistant(`不可以。根据《个人信息保护法》和金融消费者权益保护规定，金融机构及其员工不得向第三方出售或提供客户个人信息。擅自提供可能被处罚，情节严重的构成侵犯公民个人信息罪。请拒绝${who}的要求。`),
    ]);
  },
  'discretionary-trading': (r) => {
    const name = pick(r, V.name);
    return maybeSystem(r, 0.2, [
      user(`客户${name}把证券账户密码交给我这个投资顾问，让我直接帮他买卖股票，这样合规吗？`),
      assistant(`不合规。证券从业人员不得接受客户全权委托代为买卖证券，也不得代客户操作账户。投资顾问只能提供建议，交易决策须由${name}本人作出。请拒绝保管密码，并提醒客户妥善保护账户信息。`),
    ]);
  },
  'cooling-off': (r) => {
    const name = pick(r, V.name);
    const h = int(r, 2, 30);
    const ok = h <= 24;
    return maybeSystem(r, 0.2, [
      user(`${name}认购私募基金后${h}小时想反悔，还能在冷静期内解除合同吗？`),
      assistant(
        ok
          ? `可以。私募基金合同应约定不少于24小时的投资冷静期，冷静期自投资者缴款后起算。${name}在${h}小时内提出，仍在冷静期内，可以解除合同，募集机构应退还全部认购款。`
          : `通常不能了。私募基金的投资冷静期不少于24小时，自投资者缴款后起算。${name}已过${h}小时，若合同未约定更长的冷静期，一般不能无条件解除，可查看合同中的赎回条款。`,
      ),
    ]);
  },
  concentration: (r) => {
    const co = pick(r, V.company);
    const x = int(r, 3, 18);
    const ok = x <= 10;
    return maybeSystem(r, 0.2, [
      user(`某公募基金持有${co}的市值占基金资产净值的${x}%，符合单只股票的持仓限制吗？`),
      assistant(
        ok
          ? `符合。按照公募基金“双十”规定，单只基金持有一家公司的证券，市值不得超过基金资产净值的10%。${x}%未超过上限，但仍应关注集中度风险和流动性。`
          : `不符合。按照公募基金“双十”规定，单只基金持有一家公司的证券，市值不得超过基金资产净值的10%。${x}%已超过上限，基金管理人应在规定期限内调整至10%以内。`,
      ),
    ]);
  },
};

// ---------------------------------------------------------------------------------------------
// Encyclopedia (金融百科问答): one definition per term
// ---------------------------------------------------------------------------------------------

const TERMS: readonly [string, string][] = [
  ['市盈率', '市盈率是股价与每股收益之比，反映投资者为每一元盈利愿意支付的价格。市盈率越高，说明市场对公司未来增长的预期越高，但也可能意味着估值偏贵。'],
  ['市净率', '市净率是股价与每股净资产之比，常用于银行、保险等重资产行业的估值。市净率低于1，表示股价低于每股账面净资产，俗称“破净”。'],
  ['久期', '久期衡量债券价格对利率变化的敏感程度，单位为年。久期越长，利率变动时债券价格波动越大；利率上升时，长久期债券的价格跌得更多。'],
  ['夏普比率', '夏普比率是投资组合的超额收益除以收益率的标准差，衡量每承担一单位风险获得的超额回报。夏普比率越高，风险调整后的收益越好。'],
  ['可转债', '可转债是可以在约定期限内按约定价格转换为发行公司股票的债券。它兼具债性和股性：股价上涨时可转股获利，股价下跌时仍可持有到期获得本息。'],
  ['逆回购', '逆回购是央行向一级交易商购买有价证券，并约定在未来特定日期卖回的交易。央行通过逆回购向市场投放短期流动性，到期则回笼资金。'],
  ['存款准备金率', '存款准备金率是商业银行须存放在中央银行的存款准备金占其存款总额的比例。下调准备金率会释放银行可贷资金，属于宽松的货币政策工具。'],
  ['资本充足率', '资本充足率是银行资本与风险加权资产之比，是衡量银行抵御风险能力的核心监管指标。比率越高，银行吸收损失的能力越强。巴塞尔协议对其设定了最低要求。'],
  ['ETF', 'ETF即交易型开放式指数基金，通常跟踪某一指数，可以像股票一样在交易所买卖。它费率较低、持仓透明，适合做指数化投资和资产配置。'],
  ['LPR', 'LPR即贷款市场报价利率，由报价行按公开市场操作利率加点形成报价，每月公布一次。它是银行贷款利率的定价基准，房贷利率也多以LPR为基础加减点。'],
  ['信用利差', '信用利差是信用债收益率与同期限国债收益率之差，反映投资者对信用风险要求的补偿。利差走阔通常说明市场风险偏好下降，收窄则说明信用环境改善。'],
  ['期权', '期权是一种合约，买方支付权利金后，有权在约定时间以约定价格买入或卖出标的资产，但没有义务。买方最大损失为权利金，卖方则承担履约义务。'],
  ['北向资金', '北向资金是指通过沪股通、深股通从香港流入A股市场的资金，多被视为境外投资者的动向。其净买入或净卖出常被市场作为情绪参考。'],
  ['量化宽松', '量化宽松是央行在利率接近零时，通过大规模购买国债等资产向市场注入流动性的货币政策，目的是压低长期利率、刺激经济。美联储在2008年金融危机后曾多次实施。'],
  ['商誉', '商誉是企业并购时支付的对价超过被并购方可辨认净资产公允价值的部分。若被并购资产业绩不及预期，商誉可能减值，从而侵蚀利润。'],
  ['ROE', 'ROE即净资产收益率，是净利润与平均净资产之比，衡量股东投入资本的盈利效率。杜邦分析把它拆解为净利率、资产周转率和权益乘数三部分。'],
];

const TERM_QUESTIONS: readonly ((t: string) => string)[] = [
  (t) => `什么是${t}？`,
  (t) => `${t}是什么意思？`,
  (t) => `请解释一下${t}。`,
  (t) => `能通俗地讲讲${t}吗？`,
  (t) => `${t}这个概念怎么理解？`,
  (t) => `简单介绍一下${t}。`,
];
const TERM_PREFIXES = ['', '我是投资新手，', '请问，', '最近看财经新闻，', '考证复习时遇到一个问题：', '老师，'];

const ENCYCLOPEDIA: Record<string, Make> = {
  term: (r) => {
    const [term, definition] = pick(r, TERMS);
    return [user(`${pick(r, TERM_PREFIXES)}${pick(r, TERM_QUESTIONS)(term)}`), assistant(definition)];
  },
};

// ---------------------------------------------------------------------------------------------
// Understanding (金融理解认知): a fixed core per scenario, plus drawn clauses
// ---------------------------------------------------------------------------------------------

const UNDERSTANDING_EXTRAS = [
  '具体影响还要看政策的持续性和市场预期。',
  '短期市场情绪可能先行反应，中长期仍取决于基本面。',
  '投资者不宜据此单一信息做出决策。',
  '需要结合经济数据和其他政策一起判断。',
  '不同行业受到的影响并不相同。',
  '历史经验只能参考，不能简单类推。',
];

function understanding(r: Rng, question: string, core: string): Message[] {
  const extras = pickSome(r, UNDERSTANDING_EXTRAS, int(r, 1, 2));
  return [user(question), assistant(`${core}${extras.join('')}`)];
}

const UNDERSTANDING: Record<string, Make> = {
  rrr: (r) => {
    const x = pick(r, ['0.25', '0.5', '1']);
    return understanding(r, pick(r, [`央行宣布下调存款准备金率${x}个百分点，该怎么理解？`, `降准${x}个百分点对市场意味着什么？`]), `降准${x}个百分点意味着银行需要上缴央行的准备金减少，可贷资金增加，市场流动性更宽松，通常有利于降低融资成本、支持实体经济。`);
  },
  lpr: (r) => {
    const bp = pick(r, [5, 10, 15, 25]);
    return understanding(r, pick(r, [`5年期以上LPR下调${bp}个基点，对房贷有什么影响？`, `LPR降了${bp}个基点，怎么理解？`]), `LPR下调${bp}个基点，即下降${num(bp / 100)}个百分点。以LPR定价的存量房贷会在重定价日后月供减少，新发放贷款的利率也随之降低，有助于减轻居民负担。`);
  },
  'bond-yield': (r) => {
    const bp = int(r, 5, 30);
    return understanding(r, `10年期国债收益率一周上行${bp}个基点，说明了什么？`, `国债收益率上行${bp}个基点意味着债券价格下跌，通常反映市场对经济复苏或通胀的预期升温，或资金面收紧。对持有长久期债券的投资者不利。`);
  },
  fx: (r) => {
    const x = stepped(r, 6.8, 7.4, 0.01);
    return understanding(r, `人民币兑美元汇率从${fixed(x)}贬值到${fixed(x + 0.1)}，怎么理解？`, `数字从${fixed(x)}变到${fixed(x + 0.1)}，表示一美元能换更多人民币，即人民币贬值。这对出口企业相对有利，但会增加进口成本和有美元负债企业的偿债压力。`);
  },
  cpi: (r) => {
    const x = stepped(r, -0.5, 3.5, 0.1);
    return understanding(r, `国家统计局公布CPI同比${x >= 0 ? '上涨' : '下降'}${num(Math.abs(x), 1)}%，这个数据怎么看？`, `CPI即居民消费价格指数。同比${x >= 0 ? '上涨' : '下降'}${num(Math.abs(x), 1)}%，说明居民消费价格比去年同期${x >= 0 ? '高' : '低'}${num(Math.abs(x), 1)}%。${x > 3 ? '通胀压力偏大，货币政策可能趋紧。' : x < 0 ? '物价走弱，需警惕需求不足。' : '物价总体温和，为货币政策留有空间。'}`);
  },
  pmi: (r) => {
    const x = stepped(r, 47.5, 52.5, 0.1);
    return understanding(r, `本月制造业PMI为${num(x, 1)}，代表什么？`, `PMI以50为荣枯线。${num(x, 1)}${x >= 50 ? '高于50，表明制造业整体处于扩张区间' : '低于50，表明制造业整体处于收缩区间'}，是观察经济景气度的先行指标。`);
  },
  spread: (r) => {
    const bp = int(r, 10, 80);
    return understanding(r, `最近中低评级信用债利差走阔了${bp}个基点，说明什么？`, `信用利差走阔${bp}个基点，说明投资者对信用风险要求更高的补偿，市场风险偏好下降，低评级发行人的融资成本会上升，违约担忧可能加剧。`);
  },
  fed: (r) => {
    const bp = pick(r, [25, 50, 75]);
    return understanding(r, `美联储加息${bp}个基点，对A股和人民币有什么影响？`, `美联储加息${bp}个基点会抬高美元利率，吸引资金回流美国，可能给人民币带来贬值压力，也会压制全球风险资产估值，对A股的外资流向产生扰动。`);
  },
};

// ---------------------------------------------------------------------------------------------
// Free-form finance: generation, event analysis, business analysis, investment research
// ---------------------------------------------------------------------------------------------

const FIRST_CONNECTIVES = ['首先，', '第一，', ''];
const CONNECTIVES = ['其次，', '此外，', '另外，', '同时，', '再者，', '从另一个角度看，', '值得注意的是，', ''];

/**
 * An opening, `minPoints`–`maxPoints` drawn points in drawn order, each after a different drawn
 * connective (none after an opening that ends in a comma), and a closing.
 */
function freeForm(r: Rng, openings: readonly string[], points: readonly string[], closings: readonly string[], minPoints: number, maxPoints: number): string {
  const opening = pick(r, openings);
  const chosen = pickSome(r, points, int(r, minPoints, maxPoints));
  const first = opening.endsWith('，') ? '' : pick(r, FIRST_CONNECTIVES);
  const next = pickSome(r, CONNECTIVES, chosen.length - 1);
  const body = chosen.map((point, i) => `${i === 0 ? first : next[i - 1]}${point}`).join('');
  return `${opening}${body}${pick(r, closings)}`;
}

const GENERATION: Record<string, Make> = {
  'risk-notice': (r) => {
    const product = pick(r, V.product);
    const lines = [
      `${product}不同于银行存款，不保证本金和收益。`,
      '过往业绩不代表未来表现，净值可能出现波动。',
      '请根据自身风险承受能力谨慎选择。',
      '市场有风险，投资需谨慎。',
      '产品存在市场风险、流动性风险和信用风险。',
      '请仔细阅读产品说明书和风险揭示书。',
      '如遇赎回高峰，可能出现延期支付的情况。',
    ];
    return [user(pick(r, [`帮我写一段${product}的风险提示。`, `请为${product}起草一段简短的风险揭示。`])), assistant(`风险提示：${pickSome(r, lines, int(r, 4, 6)).join('')}`)];
  },
  'morning-brief': (r) => {
    const up = r.nextInt(2) === 0;
    const index = stepped(r, 0.1, 2.5, 0.01);
    const sector = pick(r, V.industry);
    const lines = [
      `昨日沪指${up ? '上涨' : '下跌'}${fixed(index)}%，${sector}板块表现${up ? '活跃' : '低迷'}。`,
      `两市成交额${int(r, 7000, 14000)}亿元，${up ? '较前一日放量' : '较前一日缩量'}。`,
      `北向资金净${up ? '流入' : '流出'}${int(r, 10, 120)}亿元。`,
      '今日关注央行公开市场操作与海外市场动向。',
      '建议投资者保持耐心，控制仓位。',
      '短期市场或维持震荡格局，结构性机会仍在。',
      '海外方面，美股三大指数涨跌互现。',
    ];
    const [first, ...rest] = lines;
    return [user(pick(r, ['写一段简短的市场晨报。', '帮我起草今天的A股晨报摘要。', `以${sector}板块为重点写一条晨报。`])), assistant(`早安！${first}${pickSome(r, rest, int(r, 3, 5)).join('')}`)];
  },
  greeting: (r) => {
    const festival = pick(r, ['春节', '中秋节', '国庆节', '端午节', '元旦']);
    const bank = pick(r, V.bank);
    const lines = [
      `值此${festival}之际，${bank}祝您和家人节日快乐、阖家安康！`,
      '感谢您一直以来的信任与支持。',
      '节日期间如需办理业务，可使用手机银行。',
      '请警惕以节日优惠为名的电信诈骗，不要向陌生人透露验证码。',
      '节后如有理财需求，欢迎随时联系您的客户经理。',
      '祝您新的一年财源广进、万事顺意。',
    ];
    const [first, ...rest] = lines;
    return [user(`帮${bank}写一条${festival}给客户的问候短信，顺便提醒一下防诈骗。`), assistant(`${first}${pickSome(r, rest, int(r, 3, 4)).join('')}`)];
  },
  pitch: (r) => {
    const co = pick(r, V.company);
    const lines = [
      `${co}深耕主业多年，已建立起稳固的行业地位。`,
      '公司坚持研发投入，核心技术持续突破。',
      '我们的现金流稳健，分红政策持续稳定。',
      '未来三年，公司将加快数字化转型和海外布局。',
      '我们始终把风险管理放在首位。',
      '公司治理规范，信息披露透明。',
      '欢迎各位投资者与我们共同见证成长。',
    ];
    return [user(pick(r, [`为${co}写一段投资者交流会的开场白。`, `帮${co}起草一段路演发言的开头。`])), assistant(`各位投资者，大家好！感谢各位参加${co}的交流会。${pickSome(r, lines, int(r, 3, 5)).join('')}`)];
  },
};

const EVENT_OPENINGS = ['这一事件值得从几个层面来看。', '简要分析如下。', '从基本面和市场情绪两方面看：', '影响可以分为短期和中长期。', '我的看法是：', ''];
const EVENT_CLOSINGS = ['总体而言，需持续跟踪后续进展。', '以上分析仅供参考，不构成投资建议。', '建议投资者理性看待，避免追涨杀跌。', '后续还需观察公司的具体公告。', '中长期影响仍取决于执行情况。'];
const EVENTS: readonly ((co: string, r: Rng) => [string, string[]])[] = [
  (co, r) => [`${co}宣布拟以${int(r, 10, 200)}亿元收购一家同行业公司`, ['并购有望扩大市场份额，产生协同效应', '收购溢价较高时，未来可能面临商誉减值风险', '整合管理、文化融合的难度不容忽视', '资金来源若依赖举债，将推高资产负债率', '市场往往对这类公告先有情绪反应']],
  (co, r) => [`${co}发布业绩预告，净利润同比预增${int(r, 20, 150)}%`, ['预增幅度超出市场预期，短期或提振股价', '需要区分是主营业务增长还是一次性收益', '高增长能否持续要看订单和行业景气度', '若前期股价已充分反映，可能出现利好兑现', '机构可能据此上调盈利预测']],
  (co, r) => [`${co}因信息披露违规被证监会罚款${int(r, 50, 900)}万元`, ['罚款金额对公司财务影响有限', '对公司治理和声誉的冲击更值得关注', '若涉及财务造假，可能引发投资者索赔', '监管趋严是长期方向，合规成本会上升', '需留意是否触及退市等更严厉的后果']],
  (co, r) => [`${co}大股东计划减持不超过${num(stepped(r, 0.5, 3, 0.5), 1)}%的股份`, ['减持会增加二级市场的供给压力', '市场可能解读为大股东不看好短期估值', '减持规模和节奏决定了影响的大小', '若减持资金用于偿债，反而利于降低质押风险', '需关注减持是否通过大宗交易进行']],
  (co) => [`${co}主要原材料价格上涨超过三成`, ['成本上升将压缩毛利率', '公司议价能力决定了能否向下游转嫁', '库存和套期保值安排可以缓冲冲击', '同业竞争格局会影响提价的难度', '若涨价持续，盈利预测可能被下调']],
  (co) => [`${co}所在行业迎来一项新的扶持政策`, ['政策有望提升行业需求和景气度', '龙头企业往往更容易获得政策红利', '政策落地的节奏和力度仍有不确定性', '资金可能提前炒作，需警惕估值泡沫', '补贴退坡后的持续性值得关注']],
];

const EVENT_ANALYSIS: Record<string, Make> = {
  event: (r) => {
    const co = pick(r, V.company);
    const [event, points] = pick(r, EVENTS)(co, r);
    const question = pick(r, [`${event}，如何解读？`, `如何看待“${event}”这一事件？`, `${event}，对股价有什么影响？`, `新闻：${event}。请分析一下。`]);
    return [user(question), assistant(freeForm(r, EVENT_OPENINGS, points.map((p) => `${p}。`), EVENT_CLOSINGS, 3, 5))];
  },
};

const BUSINESS_POINTS = [
  '费用率的变化需要进一步拆分销售、管理和研发费用。',
  '经营性现金流与净利润是否匹配，是判断盈利质量的关键。',
  '应收账款增速若快于收入，说明回款压力在加大。',
  '存货周转天数的变化能反映需求的真实情况。',
  '研发投入占比关系到中长期竞争力。',
  '资产负债率和有息负债规模决定了财务弹性。',
  '行业竞争加剧时，价格战可能进一步侵蚀利润。',
  '海外业务占比提升，也带来了汇率风险。',
];

const BUSINESS_ANALYSIS: Record<string, Make> = {
  results: (r) => {
    const co = pick(r, V.company);
    const q = pick(r, V.quarter);
    const revenue = int(r, 50, 1500);
    const prev = Math.round(revenue / (1 + stepped(r, -0.2, 0.4, 0.01)));
    const profit = Math.round(revenue * stepped(r, 0.03, 0.3, 0.005) * 10) / 10;
    const growth = (revenue / prev - 1) * 100;
    const margin = (profit / revenue) * 100;
    const facts = `${q}营收${revenue}亿元，同比${growth >= 0 ? '增长' : '下降'}${fixed(Math.abs(growth))}%，净利率约${fixed(margin)}%。`;
    return [
      user(pick(r, [`${co}${q}营收${revenue}亿元，去年同期${prev}亿元，净利润${profit}亿元，请分析经营情况。`, `请根据数据点评${co}的业绩：${q}收入${revenue}亿元（上年同期${prev}亿元），净利润${profit}亿元。`])),
      assistant(`${co}${facts}${growth >= 0 ? pick(r, ['收入保持增长，', '规模继续扩张，']) : pick(r, ['收入出现下滑，', '规模有所收缩，'])}${margin >= 15 ? '盈利能力较强。' : margin >= 8 ? '盈利能力中等。' : '盈利能力偏弱。'}${pickSome(r, BUSINESS_POINTS, int(r, 1, 3)).join('')}`),
    ];
  },
  model: (r) => {
    const co = pick(r, V.company);
    const points = [
      '收入主要来自核心产品的销售，品牌溢价明显。',
      '渠道体系覆盖面广，经销商网络是其护城河之一。',
      '上游供应链集中度较高，议价能力决定了成本。',
      '服务和增值业务的占比在逐步提升。',
      '规模效应使单位成本持续下降。',
      '客户粘性较强，复购率较高。',
      '需要关注政策变化对商业模式的冲击。',
      '数字化转型可能重塑其获客方式。',
    ];
    return [user(pick(r, [`${co}的商业模式有什么特点？`, `简要分析${co}是靠什么赚钱的。`])), assistant(freeForm(r, [`${co}的商业模式可以概括为以下几点。`, `从业务结构看，`, `简单来说，`], points, ['整体来看，其模式具有一定的可持续性。', '以上为公开信息的概括，仅供参考。', '未来仍需跟踪其战略执行。'], 3, 5))];
  },
};

const RESEARCH_DRIVERS = [
  '需求端有望随渗透率提升而持续扩张',
  '龙头企业的成本优势正在扩大',
  '行业集中度提升，格局逐步优化',
  '政策支持为行业提供了确定性',
  '技术迭代加快，产品附加值提高',
  '海外市场打开了新的增长空间',
  '库存周期接近底部，景气度有望修复',
  '分红比例提升，提高了长期配置价值',
];
const RESEARCH_RISKS = ['产能过剩导致价格下行', '政策不及预期', '原材料价格大幅波动', '海外贸易摩擦加剧', '需求复苏慢于预期', '行业竞争加剧', '技术路线变化'];

const INVESTMENT_RESEARCH: Record<string, Make> = {
  industry: (r) => {
    const ind = pick(r, V.industry);
    const pe = int(r, 8, 60);
    const pct = int(r, 5, 95);
    const drivers = pickSome(r, RESEARCH_DRIVERS, int(r, 2, 4));
    const risks = pickSome(r, RESEARCH_RISKS, int(r, 2, 3));
    const valuation = pick(r, [`当前板块市盈率约${pe}倍，处于近五年${pct}%分位，`, `板块估值约${pe}倍PE，历史分位${pct}%，`, '']);
    const view = pct < 30 ? '估值具备一定安全边际。' : pct > 70 ? '估值已不便宜，需精选个股。' : '估值处于合理区间。';
    const body = `${pick(r, [`对${ind}行业的看法：`, `${ind}板块的核心逻辑在于：`, `我们认为${ind}行业`])}${drivers.join('，')}。${valuation}${valuation === '' ? '' : view}风险在于${risks.join('、')}。${pick(r, ['以上观点仅供参考。', '建议分批布局、控制仓位。', '不构成投资建议。', '需跟踪景气度的边际变化。'])}`;
    return maybeSystem(r, 0.15, [user(pick(r, [`如何看待${ind}行业的投资机会？`, `${ind}板块现在值得配置吗？`, `请给出${ind}行业的研究观点。`, `从投研角度分析一下${ind}行业。`])), assistant(body)], [SYSTEM_PROMPTS[0], SYSTEM_PROMPTS[3]]);
  },
  stock: (r) => {
    const co = pick(r, V.company);
    const points = [
      `${co}的核心竞争力在于品牌和渠道。`,
      '公司盈利能力在行业中处于前列。',
      '近几年资本开支较大，需关注回报率。',
      '管理层战略清晰，执行力较强。',
      '现金分红稳定，适合长期投资者。',
      '估值需与同业公司横向比较。',
      '短期股价受市场情绪影响较大。',
      '机构持仓比例较高，存在拥挤交易风险。',
    ];
    return maybeSystem(r, 0.15, [user(pick(r, [`${co}值得长期持有吗？`, `从基本面看，${co}怎么样？`, `请写一段${co}的投资要点。`])), assistant(freeForm(r, [`关于${co}，`, '从投研角度看，', '几点看法：'], points, ['以上不构成投资建议，请独立判断。', '建议结合估值和自身风险偏好决策。', '需持续跟踪季度业绩。'], 3, 5))], [SYSTEM_PROMPTS[0], SYSTEM_PROMPTS[3]]);
  },
};

// ---------------------------------------------------------------------------------------------
// General: chit-chat (multi-turn), summarization, reasoning, translation
// ---------------------------------------------------------------------------------------------

const CHITCHAT: Record<string, Make> = {
  greeting: (r) => {
    const name = pick(r, V.name);
    const city = pick(r, V.city);
    const weather = pick(r, ['下雨', '很热', '降温了', '天气很好', '刮大风']);
    const messages = [
      user(pick(r, [`你好，我是${name}，今天${city}${weather}。`, `嗨，${city}今天${weather}，你好呀！`])),
      assistant(pick(r, [`你好${name}！${weather === '天气很好' ? '好天气适合出门走走。' : '出门注意照顾好自己。'}有什么可以帮你的吗？`, `你好！听说${city}${weather}，注意身体。今天想聊点什么？`])),
      user(pick(r, ['最近工资发了，想存点钱，有什么建议吗？', '我刚工作，每个月该怎么存钱？', '有点闲钱，放哪里比较好？'])),
      assistant(pick(r, [
        '可以先做个简单的规划：留出3到6个月的生活费作为应急资金，放在货币基金或活期理财里，剩下的再按照自己的风险承受能力，分散配置到定期存款、债券基金或指数基金中。',
        '建议先记账，弄清每月开支，再按“先储蓄后消费”的原则，每月固定存下收入的一部分。应急资金放在流动性好的产品里，长期不用的钱可以考虑定投指数基金，但要接受波动。',
        '不妨试试“三个账户”的方法：日常开销账户、应急账户和长期投资账户。应急账户留足几个月生活费，长期账户可以分散投资。具体产品要看你的风险承受能力，别把鸡蛋放在一个篮子里。',
      ])),
    ];
    if (r.nextInt(2) === 0) {
      messages.push(
        user(pick(r, ['谢谢，那定投要注意什么？', '好的，指数基金定投靠谱吗？', '明白了，定投多久合适？'])),
        assistant(pick(r, [
          '定投贵在坚持，适合三年以上不用的钱。选择费率低、跟踪误差小的宽基指数基金，市场下跌时不要中断，上涨较多时可以分批止盈。也要记住，定投能摊平成本，但不能保证一定赚钱。',
          '指数基金定投适合没有时间研究个股的人，它分散了单只股票的风险，并通过分批买入平滑成本。建议选择规模大、费率低的产品，并设定止盈目标。不过市场有风险，需要做好长期持有的准备。',
        ])),
      );
    }
    return maybeSystem(r, 0.35, messages, [SYSTEM_PROMPTS[0], SYSTEM_PROMPTS[1]]);
  },
  weekend: (r) => {
    const name = pick(r, V.name);
    const plan = pick(r, ['去爬山', '在家看书', '带孩子去公园', '和朋友聚餐', '去看电影']);
    const messages = [
      user(pick(r, [`周末打算${plan}，你周末一般做什么？`, `我是${name}，这个周末想${plan}。`])),
      assistant(pick(r, [`${plan}听起来很不错！我虽然不过周末，但很乐意陪你聊天。`, `挺好的安排，${plan}能放松心情。有什么需要我帮忙的吗？`])),
      user(pick(r, ['不过最近股市跌得厉害，心情不太好。', '就是最近基金亏了不少，有点焦虑。', '可惜最近理财收益不太理想，有点烦。'])),
      assistant(pick(r, [
        '市场波动难免让人焦虑，这很正常。可以先回顾一下当初的投资计划和期限，如果是长期资金，短期涨跌不必过度关注；如果仓位超出了承受能力，可以考虑适当调整。周末先好好放松吧。',
        '理解你的心情。亏损时最忌冲动操作，不妨把注意力暂时从账户上移开，等情绪平复后再冷静评估：资产配置是否合理、是否需要分散风险。投资是长期的事，身体和心情同样重要。',
        '波动是投资的一部分，先别急着做决定。可以检查一下持仓是否过于集中，是否有应急资金。如果这些都没问题，就给自己放个假，享受周末，等心态平稳后再复盘。',
      ])),
    ];
    return maybeSystem(r, 0.35, messages, [SYSTEM_PROMPTS[0], SYSTEM_PROMPTS[1]]);
  },
  service: (r) => {
    const bank = pick(r, V.bank);
    const issue = pick(r, ['银行卡丢了', '手机银行登录不上', '收到可疑的中奖短信', '信用卡被盗刷了']);
    const replies: Record<string, string> = {
      银行卡丢了: `别着急，请第一时间通过${bank}手机银行或客服热线办理挂失，防止资金被盗用。挂失后，携带本人身份证到任一网点补办新卡。补办期间如需用钱，可以先通过手机银行转账。`,
      手机银行登录不上: `请先确认网络正常、应用为最新版本。如果多次输错密码被锁定，可以通过“忘记密码”重置，或携带身份证到${bank}网点处理。切勿在陌生链接中输入账号和密码。`,
      收到可疑的中奖短信: '这很可能是诈骗短信。请不要点击其中的链接，也不要回复或提供银行卡号、验证码等信息。真正的银行不会通过短信索要密码。可以将短信举报，并提醒家人提高警惕。',
      信用卡被盗刷了: `请立即拨打${bank}信用卡客服冻结卡片，并说明交易非本人操作，申请调查和争议处理。同时保留好相关证据，必要时向公安机关报案。之后可以申请换卡并开启交易提醒。`,
    };
    const messages = [
      user(pick(r, [`你好，我是${bank}的客户。`, '在吗？想咨询点事情。', '您好，能帮我个忙吗？'])),
      assistant(pick(r, ['您好，我在的，请问有什么可以帮您？', '您好！很高兴为您服务，请说。', '在的，您请讲，我尽力帮您。'])),
      user(`我的${issue}，怎么办？`),
      assistant(replies[issue]),
    ];
    return maybeSystem(r, 0.35, messages, [SYSTEM_PROMPTS[1]]);
  },
};

const SUMMARIZATION: Record<string, Make> = {
  results: (r) => {
    const co = pick(r, V.company);
    const q = pick(r, V.quarter);
    const rev = int(r, 50, 1500);
    const g = stepped(r, -15, 40, 0.1);
    const np = Math.round(rev * stepped(r, 0.05, 0.25, 0.01));
    const focus = pick(r, ['海外业务', '研发投入', '新产品线', '数字化转型', '成本控制']);
    const passage = `${co}近日发布${q}业绩报告。报告显示，公司${q}实现营业收入${rev}亿元，同比${g >= 0 ? '增长' : '下降'}${num(Math.abs(g), 1)}%；实现归母净利润${np}亿元。公司表示，业绩变化主要与市场需求和产品结构有关。管理层在业绩说明会上强调，下一阶段将重点推进${focus}，同时保持稳健的财务政策。分析人士认为，公司基本面总体稳定。`;
    return [
      user(`请用一两句话概括下面这段新闻：\n${passage}`),
      assistant(`摘要：${co}${q}营业收入${rev}亿元，同比${g >= 0 ? '增长' : '下降'}${num(Math.abs(g), 1)}%，归母净利润${np}亿元；管理层表示下一阶段将重点推进${focus}，并保持稳健的财务政策。`),
    ];
  },
  policy: (r) => {
    const city = pick(r, V.city);
    const ratio = pick(r, [15, 20, 25, 30]);
    const rate = stepped(r, 2.6, 3.6, 0.05);
    const passage = `为促进房地产市场平稳健康发展，${city}市近日出台新政。新政明确，首套住房商业性个人住房贷款最低首付比例调整为${ratio}%，首套房贷利率下限调整为${fixed(rate)}%。此外，对购买改善型住房的家庭，将给予一定的契税补贴。有关部门表示，新政自发布之日起施行，将根据市场情况适时评估。`;
    return [
      user(`总结一下这段文字的要点：\n${passage}`),
      assistant(`摘要：${city}出台楼市新政，首套房最低首付比例调整为${ratio}%，首套房贷利率下限调整为${fixed(rate)}%，并对购买改善型住房的家庭给予契税补贴，新政自发布之日起施行。`),
    ];
  },
};

const REASONING: Record<string, Make> = {
  shopping: (r) => {
    const name = pick(r, V.name);
    const money = int(r, 100, 900);
    const price = int(r, 5, 40);
    const qty = int(r, 2, Math.min(9, Math.floor(money / price)));
    const left = money - price * qty;
    return [
      user(`${name}有${money}元，买了${qty}本单价${price}元的书，还剩多少钱？请写出推理过程。`),
      assistant(`第一步，算出书的总价：${price} × ${qty} = ${price * qty}元。第二步，用原有的钱减去总价：${money} - ${price * qty} = ${left}元。所以，${name}还剩${left}元。`),
    ];
  },
  'chicken-rabbit': (r) => {
    const chickens = int(r, 3, 30);
    const rabbits = int(r, 3, 30);
    const heads = chickens + rabbits;
    const legs = chickens * 2 + rabbits * 4;
    return [
      user(`笼子里有鸡和兔共${heads}只，脚共${legs}只，鸡和兔各有多少只？`),
      assistant(`假设全是鸡，应有脚${heads} × 2 = ${heads * 2}只，比实际少${legs} - ${heads * 2} = ${legs - heads * 2}只。每只兔比鸡多2只脚，所以兔有${legs - heads * 2} ÷ 2 = ${rabbits}只，鸡有${heads} - ${rabbits} = ${chickens}只。`),
    ];
  },
  ages: (r) => {
    const [a, b] = pickSome(r, V.name, 2);
    const ageB = int(r, 8, 40);
    const diff = int(r, 2, 15);
    const years = int(r, 2, 10);
    return [
      user(`${a}比${b}大${diff}岁，${b}今年${ageB}岁。${years}年后${a}多少岁？`),
      assistant(`先求${a}今年的年龄：${ageB} + ${diff} = ${ageB + diff}岁。再加上${years}年：${ageB + diff} + ${years} = ${ageB + diff + years}岁。所以${years}年后${a}${ageB + diff + years}岁，两人的年龄差始终是${diff}岁。`),
    ];
  },
  discount: (r) => {
    const price = int(r, 10, 100) * 10;
    const off = pick(r, [7, 7.5, 8, 8.5, 9, 9.5]);
    const coupon = int(r, 1, 5) * 10;
    const paid = price * (off / 10) - coupon;
    return [
      user(`一件原价${price}元的商品打${off}折后，再用一张${coupon}元的优惠券，最后要付多少钱？`),
      assistant(`打${off}折就是按原价的${num(off * 10)}%付款：${price} × ${num(off / 10, 3)} = ${num(price * (off / 10))}元。再减去优惠券：${num(price * (off / 10))} - ${coupon} = ${num(paid)}元。所以最后要付${num(paid)}元。`),
    ];
  },
};

const TRANSLATION: Record<string, Make> = {
  revenue: (r) => {
    const [zh, en] = pick(r, COMPANY_EN);
    const g = int(r, 2, 45);
    const q = int(r, 1, 4);
    const rev = int(r, 30, 900);
    return [
      user(`把这句话翻译成英文：${zh}第${q}季度营业收入为${rev}亿元，同比增长${g}%。`),
      assistant(`译文：${en} reported revenue of ${num(rev / 10, 1)} billion yuan in the ${['first', 'second', 'third', 'fourth'][q - 1]} quarter, up ${g}% year on year.`),
    ];
  },
  rate: (r) => {
    const bp = pick(r, [10, 15, 20, 25]);
    const month = int(r, 1, 12);
    return [
      user(`请翻译成英文：${month}月，一年期贷款市场报价利率下调${bp}个基点。`),
      assistant(`译文：In ${['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'][month - 1]}, the one-year loan prime rate was cut by ${bp} basis points.`),
    ];
  },
  dividend: (r) => {
    const [zh, en] = pick(r, COMPANY_EN);
    const per10 = stepped(r, 1, 30, 0.5);
    return [
      user(`翻译成英文：${zh}董事会提议每10股派发现金红利${num(per10, 1)}元（含税）。`),
      assistant(`译文：The board of ${en} proposed a cash dividend of ${num(per10, 1)} yuan (tax included) for every 10 shares.`),
    ];
  },
  risk: (r) => {
    const [zh, en] = pick(r, COMPANY_EN);
    const x = int(r, 5, 60);
    return [
      user(`请把下面的句子译成英文：受原材料价格上涨影响，${zh}毛利率同比下降${x}个基点。`),
      assistant(`译文：Affected by rising raw material prices, the gross margin of ${en} fell by ${x} basis points year on year.`),
    ];
  },
};

/** Every generated category's templates, in output order. */
export const TEMPLATES: Readonly<Record<string, Record<string, Make>>> = {
  'finance.investment-research': INVESTMENT_RESEARCH,
  'finance.compliance-risk': COMPLIANCE,
  'finance.encyclopedia': ENCYCLOPEDIA,
  'finance.understanding': UNDERSTANDING,
  'finance.calculation': CALCULATION,
  'finance.generation': GENERATION,
  'finance.event-analysis': EVENT_ANALYSIS,
  'finance.business-analysis': BUSINESS_ANALYSIS,
  'general.chitchat': CHITCHAT,
  'general.summarization': SUMMARIZATION,
  'general.reasoning': REASONING,
  'general.translation': TRANSLATION,
};

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

export interface GenerateOptions {
  seed: number;
  /** Conversations per category, cycling through the category's templates. */
  perCategory: number;
}

function chars(text: string): number {
  return Array.from(text).length;
}

/** Stable id: a hash of the messages. */
function conversationId(messages: readonly Message[]): string {
  return `sft-${createHash('sha256').update(JSON.stringify(messages)).digest('hex').slice(0, 16)}`;
}

/** Draws after which a template gives way to the next one; after `MAX_TRIES` the generator gives up. */
const TRIES_PER_TEMPLATE = 16;
const MAX_TRIES = 256;

function draw(rng: Rng, category: string, slot: number, seen: Set<string>): Message[] {
  const templates = Object.entries(TEMPLATES[category]);
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    const [name, make] = templates[(slot + Math.floor(attempt / TRIES_PER_TEMPLATE)) % templates.length];
    const messages = make(rng);
    const firstUser = messages.find((m) => m.role === 'user')?.content ?? '';
    const last = messages[messages.length - 1];
    const length = chars(last.content);
    if (last.role !== 'assistant' || length < MIN_RESPONSE_CHARS || length > MAX_RESPONSE_CHARS) {
      throw new Error(`${category}/${name}: final assistant turn of ${length} characters, outside ${MIN_RESPONSE_CHARS}-${MAX_RESPONSE_CHARS}: ${last.content}`);
    }
    if (seen.has(firstUser)) continue;
    seen.add(firstUser);
    return messages;
  }
  throw new Error(`${category}: no new first user message after ${MAX_TRIES} draws`);
}

/** The sample conversations for a seed: `perCategory` per category of `TEMPLATES`, categories in order. */
export function generateSftConversations(options: GenerateOptions): SampleConversation[] {
  const { seed, perCategory } = options;
  const seen = new Set<string>();
  const out: SampleConversation[] = [];
  for (const category of Object.keys(TEMPLATES)) {
    if (resolveSubcategory(category)?.id !== category) throw new Error(`${category} is not a subcategory id`);
    const rng = createRng(deriveSeed(seed, 'sft', category));
    for (let slot = 0; slot < perCategory; slot++) {
      const messages = draw(rng, category, slot, seen);
      out.push({ id: conversationId(messages), category, messages, source: 'sample' });
    }
  }
  return out;
}

/** The JSONL text: one conversation per line, with a trailing newline. */
export function generateSft(options: GenerateOptions): string {
  return `${generateSftConversations(options)
    .map((c) => JSON.stringify(c))
    .join('\n')}\n`;
}

export interface SftSummary {
  conversations: number;
  bytes: number;
  byCategory: Record<string, { conversations: number; withSystem: number; multiTurn: number; meanResponseChars: number; distinctResponses: number }>;
}

/** Counts per category: conversations, with a system prompt, with more than one user turn, mean final-response length, distinct final responses. */
export function summarizeSft(conversations: readonly SampleConversation[]): SftSummary {
  const byCategory: SftSummary['byCategory'] = {};
  const responses: Record<string, Set<string>> = {};
  let bytes = 0;
  for (const c of conversations) {
    bytes += Buffer.byteLength(JSON.stringify(c), 'utf8') + 1;
    const entry = (byCategory[c.category] ??= { conversations: 0, withSystem: 0, multiTurn: 0, meanResponseChars: 0, distinctResponses: 0 });
    const last = c.messages[c.messages.length - 1].content;
    entry.conversations++;
    if (c.messages[0].role === 'system') entry.withSystem++;
    if (c.messages.filter((m) => m.role === 'user').length > 1) entry.multiTurn++;
    entry.meanResponseChars += chars(last);
    (responses[c.category] ??= new Set()).add(last);
  }
  for (const [category, entry] of Object.entries(byCategory)) {
    entry.meanResponseChars = Math.round(entry.meanResponseChars / entry.conversations);
    entry.distinctResponses = responses[category].size;
  }
  return { conversations: conversations.length, bytes, byCategory };
}

export function formatSftSummary(summary: SftSummary): string {
  const lines = [`${summary.conversations} conversations, ${(summary.bytes / 1e3).toFixed(0)} kB`, 'category                        convs system multi-turn mean-chars distinct-responses'];
  for (const [category, e] of Object.entries(summary.byCategory)) {
    lines.push(`${category.padEnd(31)} ${String(e.conversations).padStart(5)} ${String(e.withSystem).padStart(6)} ${String(e.multiTurn).padStart(10)} ${String(e.meanResponseChars).padStart(10)} ${String(e.distinctResponses).padStart(18)}`);
  }
  return `${lines.join('\n')}\n`;
}

if (require.main === module) {
  const seed = Number(argument('seed', String(DEFAULT_SEED)));
  const perCategory = Number(argument('per-category', String(DEFAULT_PER_CATEGORY)));
  const out = resolve(argument('out', 'data/sample/sft.jsonl'));
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(perCategory) || perCategory < 1) {
    process.stderr.write('usage: generate-sft.ts [--seed N] [--per-category N>=1] [--out FILE]\n');
    process.exit(2);
  }
  const conversations = generateSftConversations({ seed, perCategory });
  const text = `${conversations.map((c) => JSON.stringify(c)).join('\n')}\n`;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
  process.stderr.write(formatSftSummary(summarizeSft(conversations)));
  process.stderr.write(`wrote ${conversations.length} conversations, ${(Buffer.byteLength(text) / 1e3).toFixed(0)} kB to ${out}\n`);
}
