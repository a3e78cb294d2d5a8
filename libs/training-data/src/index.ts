export * from './local-data';
export * from './shard-rows';
