export * from './backend';
export * from './ops';
export * from './tokenizer';
export * from './model';
export * from './optim';
export * from './train';
export * from './step-loop';
export * from './generate';
export * from './logprob';
// Teacher-forced scoring on the native addon (PPO's rollout scores); the rest of native.ts stays internal.
export { nativeScore, nativeScoreSharedPrompts, type NativeScoreInput, type NativeScores, type SharedPromptRow } from './native';
// The reference pass of a PPO rollout on a second thread while the policy samples.
export { StreamingScorer, type StreamingScorerOptions } from './streaming-score';
export * from './checkpoint';
export * from './checkpoint-store';
export * from './grad-check';
