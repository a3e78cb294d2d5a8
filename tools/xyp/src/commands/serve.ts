import type { Command } from 'commander';
import { parseCheckpointRef } from '@xyp/engine';
import { OpenAiService, loadServedModel, startOpenAiServer } from '@xyp/openai-server';
import { exitWithError, printResult, progress } from '../cli-output';
import { configuredBackend, configuredStore } from '../engine-runtime';

interface ServeOptions {
  checkpoint: string;
  port: string;
  host: string;
  modelName?: string;
  truncatePrompts?: boolean;
  json?: boolean;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be an integer from 0 to 65535, got ${value}`);
  return n;
}

/**
 * `xyp serve`: an OpenAI-compatible server (`/v1/models`, `/v1/completions`, `/v1/chat/completions`)
 * for one local checkpoint, until SIGINT or SIGTERM.
 */
export function registerServe(parent: Command): void {
  parent
    .command('serve')
    .description('Serve a local checkpoint over the OpenAI API (/v1/models, /v1/completions, /v1/chat/completions)')
    .requiredOption('--checkpoint <id>', 'checkpoint ID <runId>/<stage> in the store (XYP_STORE, XYP_STORE_DIR), or a checkpoint directory')
    .option('--port <n>', 'port (0 picks a free one)', '8000')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--model-name <name>', 'the model name clients pass (default: the checkpoint ID)')
    .option('--truncate-prompts', "keep the last tokens of a prompt that leaves no room for the completion, instead of refusing it (a small model's context)")
    .option('--json', 'print the ready line as one JSON object')
    .action(async (o: ServeOptions) => {
      try {
        const listenPort = port(o.port);
        progress(`loading ${o.checkpoint}`);
        // The store is only read for a `<runId>/<stage>` checkpoint; a directory needs none.
        const store = parseCheckpointRef(o.checkpoint).kind === 'store' ? configuredStore() : undefined;
        const served = await loadServedModel(o.checkpoint, { name: o.modelName, store, backend: configuredBackend() });
        const service = new OpenAiService({ models: [served], truncatePrompts: o.truncatePrompts === true, onError: (error) => progress(`request failed: ${error instanceof Error ? error.message : String(error)}`) });
        const handle = await startOpenAiServer(service, { port: listenPort, host: o.host });
        const ready = { url: `${handle.url}/v1`, model: served.id, source: served.source, contextLength: served.model.config.contextLength };
        printResult(ready, o.json === true, () => `serving ${ready.model} (${ready.source}, context ${ready.contextLength}) at ${ready.url}; Ctrl-C stops`);
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) return;
          stopping = true;
          progress(`${signal}: stopping`);
          void handle.close().then(() => process.exit(0));
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      } catch (error) {
        exitWithError(error);
      }
    });
}
