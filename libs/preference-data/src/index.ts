export * from './normalize';
export * from './rejects';
export * from './formats';
export * from './dedup';
export * from './split';
export * from './lines';
export * from './ingest';
export * from './collections';
