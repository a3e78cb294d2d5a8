export * from './run-registry';
export * from './run-events';
export * from './run-plans';
export * from './redis-outage';
