export * from './run-service';
export * from './platform.module';
export * from './health.controller';
export * from './metrics.controller';
export * from './telemetry-env';
export * from './service-telemetry';
export * from './rpc-tracing.interceptor';
