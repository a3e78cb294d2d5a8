import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createPipelineClient, type PipelineClient } from '@xyp/grpc';
import { startServiceProcess, type ServiceName, type ServiceProcess } from '@xyp/launcher';
import { dropPrefix, freePort, testPrefix, TEST_REDIS_URL } from '@xyp/testing';

/** A private platform for one test file: own key prefix, ports, store directory. */
export class PlatformHarness {
  readonly prefix: string;
  readonly storeDir: string;
  readonly boardPassword = 'board-secret-42';
  /** The latest process started of each service. */
  readonly services = new Map<ServiceName, ServiceProcess>();
  /** Every process started, so that none outlives the test file. */
  private readonly started: ServiceProcess[] = [];
  grpcPort = 0;
  client!: PipelineClient;
  private ports?: Promise<void>;
  /** The Redis the services and `redis` talk to: the tests' shared one, or a test's private one (`options.redisUrl`). */
  readonly redisUrl: string;
  redis: Redis;

  constructor(
    label: string,
    private readonly extraEnv: Record<string, string> = {},
    options: { redisUrl?: string } = {},
  ) {
    this.prefix = testPrefix(label);
    this.storeDir = mkdtempSync(join(tmpdir(), `xyp-${label}-`));
    this.redisUrl = options.redisUrl ?? TEST_REDIS_URL;
    this.redis = new Redis(this.redisUrl);
  }

  env(overrides: Record<string, string> = {}): Record<string, string> {
    return {
      XYP_REDIS_URL: this.redisUrl,
      XYP_QUEUE_PREFIX: this.prefix,
      XYP_STORE: 'local',
      XYP_STORE_DIR: this.storeDir,
      XYP_BOARD_PASSWORD: this.boardPassword,
      XYP_CONTROL_PLANE_GRPC_PORT: String(this.grpcPort),
      XYP_JOB_BACKOFF_MS: '200',
      ...this.extraEnv,
      ...overrides,
    };
  }

  async start(name: ServiceName, overrides: Record<string, string> = {}): Promise<ServiceProcess> {
    await (this.ports ??= freePort().then((port) => {
      this.grpcPort = port;
      this.client = createPipelineClient(`127.0.0.1:${port}`);
    }));
    const service = await startServiceProcess(name, {
      env: this.env(overrides),
      httpPort: await freePort(),
      logFile: join(this.storeDir, 'logs', `${name}-${Date.now()}.log`),
    });
    this.services.set(name, service);
    this.started.push(service);
    return service;
  }

  async stopAll(): Promise<void> {
    this.client?.close();
    await Promise.all(this.started.map((service) => service.stop(5000)));
    await dropPrefix(this.redis, this.prefix);
    this.redis.disconnect();
    if (!process.env.XYP_KEEP_TEST_FILES) rmSync(this.storeDir, { recursive: true, force: true });
  }
}

export function jsonl(docs: unknown[]): Buffer {
  return Buffer.from(docs.map((d) => (typeof d === 'string' ? d : JSON.stringify(d))).join('\n') + '\n');
}

/**
 * SubmitRun / `xyp up --param` overrides that run the bundled recipe's training stages on tiny
 * models: a run that checks the wiring of the whole recipe, not the learning.
 */
export const TINY_RECIPE_PARAMS: Readonly<Record<string, string>> = {
  'reward.train.steps': '2',
  'reward.train.layers': '1',
  'reward.train.width': '16',
  'reward.train.heads': '2',
  'reward.train.context': '96',
  'cpt.steps': '3',
  'cpt.stages': '3',
  'cpt.layers': '1',
  'cpt.width': '16',
  'cpt.heads': '2',
  'cpt.context': '192',
  'cpt.eval_every': '3',
  'synthesis.selfqa.max_tokens': '4',
  'synthesis.selfqa.instructions_per_document': '2',
  'synthesis.evolve.max_tokens': '4',
  'synthesis.analysis.max_tokens': '4',
  'synthesis.ensemble.max_tokens': '4',
  'sft.epochs': '2',
  'sft.examples_per_epoch': '8',
  'rlhf.ci-filter.samples': '2',
  'rlhf.ci-filter.max_tokens': '6',
  'rlhf.ppo.rounds': '1',
  'rlhf.ppo.prompts_per_round': '2',
  'rlhf.ppo.samples_per_prompt': '2',
  'rlhf.ppo.max_tokens': '6',
  'rlhf.evaluate.max_tokens': '6',
  'rlhf.improve.max_rounds': '1',
};
