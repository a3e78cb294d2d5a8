/**
 * A `Labeller` decides which of two responses to one prompt is better, or abstains (the pair is
 * not its kind: no reference answer, no human label). The builder asks the labellers in
 * precedence order; the first that does not abstain decides, confident or not.
 */
import type { PromptSample } from './prompts';
import type { SamplingSetting } from './sources';

/** One distinct response to a prompt, with where it came from. */
export interface Response {
  /** `r-` and 12 hex digits of the SHA-256 of prompt id and text: what human labels may name. */
  id: string;
  promptId: string;
  text: string;
  source: string;
  setting: SamplingSetting;
  /** The seed of the request that sampled it, and its index among the n samples. */
  seed: number;
  index: number;
  finishReason?: string;
  /** Other (source, setting) pairs that sampled the same text. */
  alsoFrom: { source: string; setting: string }[];
}

export interface PairCandidate {
  prompt: PromptSample;
  a: Response;
  b: Response;
}

export type DropReason =
  | 'judge-inconsistent'
  | 'judge-tie'
  | 'judge-below-margin'
  | 'judge-unparseable'
  | 'verifiable-both-correct'
  | 'verifiable-both-wrong'
  | 'human-conflict'
  | 'unlabelled';

export type PairLabel =
  | { labeller: string; confident: true; chosen: 'a' | 'b'; margin: number; details: Record<string, unknown> }
  | { labeller: string; confident: false; reason: DropReason; margin?: number; details: Record<string, unknown> };

export interface Labeller {
  readonly name: string;
  /** What every record this labeller labels records of it (judge model, prompt version, tolerance). */
  describe(): Record<string, unknown>;
  /** Pairs it labels for sure (a human label names them): kept as candidates past the pairing rules and the cap. */
  wants?(candidate: PairCandidate): boolean;
  /** The label, or undefined to abstain. */
  label(candidate: PairCandidate, signal?: AbortSignal): Promise<PairLabel | undefined>;
  /** Frees what the labeller holds (a gateway's connections). */
  close?(): Promise<void> | void;
}
