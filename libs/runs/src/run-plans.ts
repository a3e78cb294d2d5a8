import type { Redis } from 'ioredis';
import { CompiledPlan } from '@xyp/planner';

/**
 * A run's plan and what its planning steps have done, in Redis beside the run record, so the
 * control plane decides from the same state after a restart of every service (which instances
 * committed is not kept here: the committed manifests in the artifact store say it):
 *  - `<prefix>:run:<id>:plan`: the compiled plan (written once, at submission);
 *  - `<prefix>:run:<id>:queued`: instance id → when it was first added to the queues;
 *  - `<prefix>:run:<id>:marks`: one-time marks (`loop:<name>:<round>:continued`, ...), so an
 *    event a step publishes is published by one step only;
 *  - `<prefix>:runs:active`: runs not yet ended, which the control plane resumes on start.
 * Every write is idempotent (SET NX, HSETNX, SADD): a step run twice changes nothing the second time.
 */
export class RunPlans {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(runId: string, part: string): string {
    return `${this.prefix}:run:${runId}:${part}`;
  }

  private activeKey(): string {
    return `${this.prefix}:runs:active`;
  }

  /** Keeps the plan of a new run and marks the run active; an existing plan stays as it was. */
  async save(runId: string, plan: CompiledPlan): Promise<boolean> {
    const set = await this.redis.set(this.key(runId, 'plan'), JSON.stringify(CompiledPlan.parse(plan)), 'NX');
    await this.redis.sadd(this.activeKey(), runId);
    return set === 'OK';
  }

  async get(runId: string): Promise<CompiledPlan | null> {
    const raw = await this.redis.get(this.key(runId, 'plan'));
    return raw ? CompiledPlan.parse(JSON.parse(raw)) : null;
  }

  /** Records that an instance was added to the queues; true for the first call only. */
  async markQueued(runId: string, instanceId: string): Promise<boolean> {
    return (await this.redis.hsetnx(this.key(runId, 'queued'), instanceId, new Date().toISOString())) === 1;
  }

  async queued(runId: string): Promise<Set<string>> {
    return new Set(await this.redis.hkeys(this.key(runId, 'queued')));
  }

  /** Sets a one-time mark with a value; true for the call that set it. */
  async mark(runId: string, mark: string, value = ''): Promise<boolean> {
    return (await this.redis.hsetnx(this.key(runId, 'marks'), mark, value)) === 1;
  }

  async marks(runId: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.key(runId, 'marks'));
  }

  /** Runs whose plan is kept and which have not ended. */
  async active(): Promise<string[]> {
    return (await this.redis.smembers(this.activeKey())).sort();
  }

  async deactivate(runId: string): Promise<void> {
    await this.redis.srem(this.activeKey(), runId);
  }

  /** Removes a run's plan and step state (tests, retention jobs). */
  async remove(runId: string): Promise<void> {
    await this.redis.del(...['plan', 'queued', 'marks'].map((part) => this.key(runId, part)));
    await this.deactivate(runId);
  }
}
