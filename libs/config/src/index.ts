export * from './load-config';
export * from './platform-config';
export * from './service-env';
export * from './engine-env';
