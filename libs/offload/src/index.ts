export * from './task';
export * from './thread-runner';
export * from './bullmq-job';
export * from './event-loop';
