export * from './category-blend';
export * from './cluster-engine';
export * from './cpt-mixture-plan';
export * from './render';
export * from './validate';
