export * from './reward-model-scorer';
export * from './reward-service';
export * from './reward-client';
export * from './reward-grpc';
