import type { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { disposeModel, type BackendOptions } from '@xyp/engine';
import { LlmGateway, parseModelRegistry, type ModelConfigInput, type ResponseCache } from '@xyp/llm';
import { OpenAiService, loadServedModel, startOpenAiServer, type OpenAiServerHandle } from '@xyp/openai-server';
import { checkpointOf } from '@xyp/queue';
import type { ArtifactStore } from '@xyp/storage';

/** What a synthesis job's models are: checkpoints of the run and endpoint models of a registry file. */
export interface JobModels {
  localModels: { name: string; manifestKey: string }[];
  registryKey?: string;
}

/** The gateway over a job's models, and what to stop when the job ends. */
export interface OpenedModels {
  gateway: LlmGateway;
  names: string[];
  close(): Promise<void>;
}

/**
 * Serves the job's checkpoints in process over the OpenAI API (`@xyp/openai-server` on a local port,
 * each checkpoint under its registry name: the embedded default) and builds one gateway over them and
 * the registry's endpoint models. Fails, naming the slot, when there are no models.
 */
export async function openJobModels(job: JobModels, options: { store: ArtifactStore; backend: BackendOptions; cache?: ResponseCache; metricsRegistry?: Registry }): Promise<OpenedModels> {
  if (job.localModels.length === 0 && !job.registryKey) throw new Error('no models: bind checkpoints to the models slot or give a registry');
  const registry: ModelConfigInput[] = [];
  let server: OpenAiServerHandle | undefined;
  const served: Awaited<ReturnType<typeof loadServedModel>>[] = [];
  const names: string[] = [];
  if (job.localModels.length > 0) {
    for (const local of job.localModels) {
      const { checkpoint } = await checkpointOf(options.store, local.manifestKey, `models (${local.name})`);
      // Served under its checkpoint ID (the request's `model`), so the response cache, which hashes it,
      // never answers one run's checkpoint with another's; the registry name stays `local.name`.
      served.push(await loadServedModel(checkpoint, { store: options.store, backend: options.backend, name: checkpoint }));
      names.push(local.name);
    }
    server = await startOpenAiServer(new OpenAiService({ models: served, truncatePrompts: true }), { port: 0 });
    // The run's small models keep the last tokens of a prompt longer than their context (truncatePrompts);
    // the server decodes one request at a time.
    const baseUrl = server.url;
    served.forEach((model, i) => registry.push({ name: names[i], baseUrl, model: model.id, maxConcurrency: 4, timeoutMs: 300_000 }));
  }
  if (job.registryKey) {
    const text = (await options.store.getObject(job.registryKey)).toString('utf8');
    const endpoints = parseModelRegistry(parseYaml(text) as unknown).models;
    registry.push(...endpoints);
  }
  const gateway = new LlmGateway({ models: registry, cache: options.cache, metricsRegistry: options.metricsRegistry });
  return {
    gateway,
    names: registry.map((m) => m.name),
    close: async () => {
      gateway.close();
      await server?.close(1000);
      for (const model of served) disposeModel(model.model);
    },
  };
}
