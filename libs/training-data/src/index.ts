export * from './local-data';
export * from './shard-rows';
export * from './category-rows';
export * from './sft-data';
