export * from './run-service';
export * from './platform.module';
export * from './health.controller';
