export * from './issues';
export * from './run-spec';
export * from './compiled-plan';
export * from './graph';
export * from './compile';
export * from './step';
export * from './legacy';
