export * from './quantile';
