import type { Command } from 'commander';

/** Registered by the issue that builds this command; until then the command is absent. */
export function registerRunCommands(_parent: Command): void {}
