export * from './protocol';
export * from './serial-queue';
export * from './openai-service';
export * from './http-server';
