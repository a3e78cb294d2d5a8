export * from './errors';
export * from './stats';
export * from './ci-filter';
export * from './tiers';
export * from './pei';
export * from './judge';
export * from './report';
