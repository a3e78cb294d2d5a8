export * from './chat-completion';
