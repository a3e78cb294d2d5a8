export * from './scorer';
export * from './csv';
export * from './mcq-data';
export * from './mcq';
export * from './perplexity';
export * from './reports';
