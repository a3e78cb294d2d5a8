export * from './run-registry';
export * from './run-events';
