export * from './normalize';
export * from './rejects';
export * from './formats';
export { NearDuplicateIndex, bandsFor, estimateJaccard, minHasher } from '@xyp/minhash';
export type { MinHashOptions, NearDuplicateMatch } from '@xyp/minhash';
export * from './split';
export * from './lines';
export * from './ingest';
export * from './collections';
