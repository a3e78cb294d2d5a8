export * from './losses';
export * from './reward-model';
export * from './scoring';
export * from './alignment';
