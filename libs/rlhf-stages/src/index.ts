export * from './prompts';
export * from './reference-judge';
export * from './ci-filter';
export * from './evaluate';
export * from './ppo';
export * from './improve';
