export * from './services';
export * from './service-process';
export * from './redis';
export * from './grpc-token';
