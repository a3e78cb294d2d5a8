export * from './errors';

export * from './text';
export * from './taxonomy';
export * from './prompts';
export * from './selfqa';
export * from './evol';
export * from './analysis';
export * from './ensemble';
export * from './records';
export * from './dedup';
