export * from './cluster-engine';
export * from './render';
export * from './validate';
