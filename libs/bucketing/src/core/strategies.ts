import { BestFitDecreasingStrategy } from './bfd-strategy';
import { BucketStrategy } from './bucket-strategy';
import { FixedStrategy } from './fixed-strategy';
import type { PackingStrategy, StrategyName } from './strategy';

/**
 * The strategy selected for a run: `bucket` over several lengths, `bfd` and `fixed` over one.
 * `paddingThreshold` is the bucket method's padding threshold P (default 1%).
 */
export function createStrategy(name: StrategyName, lengths: readonly number[], paddingThreshold?: number): PackingStrategy {
  switch (name) {
    case 'bucket':
      return new BucketStrategy(lengths, paddingThreshold);
    case 'bfd':
      return new BestFitDecreasingStrategy(lengths);
    case 'fixed':
      return new FixedStrategy(lengths);
  }
}
