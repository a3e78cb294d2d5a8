export * from './ids';
export * from './artifacts';
export * from './documents';
export * from './stages';
export * from './runs';
export * from './corpus-bucket';
export * from './training-jobs';
export * from './reward';
