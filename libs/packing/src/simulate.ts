import { addStats, emptyStats, type CompositionStats } from './metrics';
import type { CategoryMixing } from '@xyp/contracts';
import type { PackingStrategy } from './strategy';
import { WindowPacker, type PackItem } from './window';
import { Windowing } from './windowing';

export interface LengthRecord {
  /** 0-based line of the document in the input. */
  line: number;
  length: number;
  category: string;
}

export interface SimulationOptions {
  windowLines: number;
  windowTokens: number;
  shardLines: number;
  seed: number;
  paddingThreshold: number;
  categoryMixing: CategoryMixing;
}

/**
 * The composition metrics a strategy gives on documents of known token lengths, with the same
 * shards, windows, carries and plans as a real run (so the same numbers) but without tokens.
 * Used to compare strategies on one tokenization. Records must come in line order.
 */
export function simulatePacking(records: Iterable<LengthRecord>, strategy: PackingStrategy, options: SimulationOptions): CompositionStats {
  const stats = emptyStats(strategy.lengths);
  let shard: { index: number; packer: WindowPacker; windowing: Windowing<PackItem> } | null = null;
  const finish = () => {
    if (shard === null) return;
    for (const window of shard.windowing.finish()) shard.packer.pack(window.key, window.items);
    shard.packer.finish();
    addStats(stats, shard.packer.stats);
  };
  for (const record of records) {
    const index = Math.floor(record.line / options.shardLines);
    if (shard === null || shard.index !== index) {
      finish();
      shard = {
        index,
        packer: new WindowPacker(strategy, {
          seed: options.seed,
          paddingThreshold: options.paddingThreshold,
          maxCarryTokens: Math.floor(options.windowTokens / 4),
          categoryMixing: options.categoryMixing,
        }),
        windowing: new Windowing<PackItem>(options.windowLines, options.windowTokens),
      };
    }
    const item: PackItem = { line: record.line, category: record.category, length: record.length, offset: 0, docLength: record.length };
    for (const window of shard.windowing.push(record.line, record.length, item)) shard.packer.pack(window.key, window.items);
  }
  finish();
  return stats;
}
