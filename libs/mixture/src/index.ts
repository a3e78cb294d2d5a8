export * from './schemas';
export * from './errors';
export * from './parse';
export * from './prng';
export * from './projection';
export * from './curve';
export * from './controller';
export * from './sampler';
