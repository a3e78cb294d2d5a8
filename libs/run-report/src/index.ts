export * from './report';
export * from './figures';
export * from './markdown';
export * from './html';
export * from './timing';
