import { BestFitDecreasingBucketsStrategy } from './bfd-buckets-strategy';
import { BestFitDecreasingStrategy } from './bfd-strategy';
import { BucketStrategy } from './bucket-strategy';
import { FixedStrategy } from './fixed-strategy';
import type { PackingStrategy, StrategyName } from './strategy';

/** The strategy selected for a run: `bucket` and `bfd-buckets` over several lengths, `bfd` and `fixed` over one. */
export function createStrategy(name: StrategyName, lengths: readonly number[]): PackingStrategy {
  switch (name) {
    case 'bucket':
      return new BucketStrategy(lengths);
    case 'bfd-buckets':
      return new BestFitDecreasingBucketsStrategy(lengths);
    case 'bfd':
      return new BestFitDecreasingStrategy(lengths);
    case 'fixed':
      return new FixedStrategy(lengths);
  }
}
