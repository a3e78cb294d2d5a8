export * from './kl';
export * from './advantages';
export * from './losses';
export * from './ppo';
