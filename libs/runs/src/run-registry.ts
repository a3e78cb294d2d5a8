import type { Redis } from 'ioredis';
import { RunRecord, type RunRecordInput, type RunStatus, TERMINAL_RUN_STATUSES } from '@xyp/contracts';
import { redisAddress } from './redis-outage';

/**
 * Moves a run to a new status unless it already ended: completed, failed and
 * cancelled are final, so a late stage event cannot revive a cancelled run.
 * KEYS[1] run key; ARGV[1] new status; ARGV[2] updatedAt; ARGV[3] JSON patch.
 * Returns the stored record (JSON) and 1 when it changed, 0 when it did not.
 */
const TRANSITION_SCRIPT = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {false, 0} end
local record = cjson.decode(raw)
local status = record['status']
if status == 'completed' or status == 'failed' or status == 'cancelled' then return {raw, 0} end
if status == ARGV[1] then return {raw, 0} end
record['status'] = ARGV[1]
record['updatedAt'] = ARGV[2]
local patch = cjson.decode(ARGV[3])
for k, v in pairs(patch) do record[k] = v end
local encoded = cjson.encode(record)
redis.call('SET', KEYS[1], encoded)
return {encoded, 1}
`;

/** Where runs are recorded: one JSON value per run and an index by creation time. */
export class RunRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** Where the records are kept (`host:port`), for messages about Redis being away. */
  get redisAddress(): string {
    return redisAddress(this.redis);
  }

  private runKey(runId: string): string {
    return `${this.prefix}:run:${runId}`;
  }

  private indexKey(): string {
    return `${this.prefix}:runs`;
  }

  /** Records a new run; an existing run with the same id is returned unchanged. */
  async create(record: RunRecordInput): Promise<{ created: boolean; record: RunRecord }> {
    const valid = RunRecord.parse(record);
    const set = await this.redis.set(this.runKey(valid.runId), JSON.stringify(valid), 'NX');
    if (set === 'OK') {
      await this.redis.zadd(this.indexKey(), Date.parse(valid.createdAt), valid.runId);
      return { created: true, record: valid };
    }
    const existing = await this.get(valid.runId);
    if (!existing) throw new Error(`run ${valid.runId} vanished while it was being created`);
    return { created: false, record: existing };
  }

  async get(runId: string): Promise<RunRecord | null> {
    const raw = await this.redis.get(this.runKey(runId));
    return raw ? RunRecord.parse(JSON.parse(raw)) : null;
  }

  /**
   * Sets a run's status unless the run already ended. Returns the record after the
   * call and whether this call changed it.
   */
  async transition(
    runId: string,
    status: RunStatus,
    patch: Partial<Pick<RunRecord, 'error' | 'reportKey' | 'reportMarkdownKey' | 'reportHtmlKey' | 'failureArtifacts'>> = {},
  ): Promise<{ changed: boolean; record: RunRecord | null }> {
    const [raw, changed] = (await this.redis.eval(
      TRANSITION_SCRIPT,
      1,
      this.runKey(runId),
      status,
      new Date().toISOString(),
      JSON.stringify(patch),
    )) as [string | null, number];
    return { changed: changed === 1, record: raw ? RunRecord.parse(JSON.parse(raw)) : null };
  }

  async isEnded(runId: string): Promise<boolean> {
    const record = await this.get(runId);
    return record !== null && TERMINAL_RUN_STATUSES.has(record.status);
  }

  /** Newest runs first. */
  async list(limit = 50): Promise<RunRecord[]> {
    const ids = await this.redis.zrevrange(this.indexKey(), 0, limit - 1);
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((r): r is RunRecord => r !== null);
  }

  /** Removes a run's record and events (tests, retention jobs). */
  async remove(runId: string): Promise<void> {
    await this.redis.del(this.runKey(runId), `${this.runKey(runId)}:events`);
    await this.redis.zrem(this.indexKey(), runId);
  }
}
