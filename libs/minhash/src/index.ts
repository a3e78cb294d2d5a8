export * from './minhash';
