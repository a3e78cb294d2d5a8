export * from './batching-reward';
export * from './call-signal';
export * from './reward-model-scorer';
export * from './reward-models';
export * from './reward-service';
export * from './reward-service-error';
export * from './reward-client';
export * from './reward-grpc';
