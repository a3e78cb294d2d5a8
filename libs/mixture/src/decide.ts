import { MixtureInputError } from './errors';
import { nextMixture, nextSftRatios, type MixtureDecision } from './controller';
import { parseLossReport, parseWeights, validateMixtureConfigInput } from './parse';

/** A named text, e.g. a file's content and its path, so errors can say where. */
export interface NamedText {
  text: string;
  source: string;
}

function parseJson(input: NamedText): unknown {
  try {
    return JSON.parse(input.text);
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ');
    throw new MixtureInputError(`${input.source}: not valid JSON (${reason})`, input.source);
  }
}

/**
 * One mixture decision from the texts of its inputs: a JSONL loss report, the current
 * weights (JSON) and an optional controller config (JSON). The CLI passes files, the
 * corpus.mix stage passes artifacts; both get the same errors, naming the source.
 * Fields the config leaves out take the defaults of the mode (SFT has its own).
 */
export function decideMixture(inputs: { losses: NamedText; weights: NamedText; config?: NamedText; sft: boolean }): MixtureDecision {
  const lines = parseLossReport(inputs.losses.text, inputs.losses.source);
  const weights = parseWeights(parseJson(inputs.weights), inputs.weights.source);
  const config = inputs.config ? validateMixtureConfigInput(parseJson(inputs.config), inputs.config.source) : {};
  return inputs.sft ? nextSftRatios(lines, weights, config) : nextMixture(lines, weights, config);
}
