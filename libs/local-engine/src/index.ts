export * from './local-engine';
export * from './job-control';
export * from './thread-task';
export * from './training-processor';
export * from './reward-curves';
export * from './policy-scorer';
export * from './cpt-mixture';
export * from './sft-epochs';
