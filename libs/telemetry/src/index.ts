export * from './job-context';
export * from './service-logger';
export * from './tracing';
export * from './span-exporters';
export * from './stage-metrics';
export * from './queue-metrics';
