export * from './report';
export * from './figures';
export * from './markdown';
export * from './html';
