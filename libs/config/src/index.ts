export * from './load-config';
export * from './platform-config';
export * from './service-env';
export * from './engine-env';
export * from './grpc-env';
export * from './cluster-env';
export * from './secret-match';
