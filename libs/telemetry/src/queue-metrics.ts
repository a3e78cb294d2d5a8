/**
 * The queue part of `/metrics`: BullMQ's own counts per queue and state (`bullmq_job_count{queue,state}`,
 * `queue.exportPrometheusMetrics()`, which KEDA's Prometheus scaler reads: it sees prioritized and
 * delayed jobs, unlike a Redis list length) and `xyp_queue_oldest_waiting_seconds{queue}`, the age of
 * the oldest job in the queue's wait list (0 when none waits).
 */
import type { Queue } from 'bullmq';

/**
 * Several text expositions as one: each family's `# HELP` and `# TYPE` once, then all its samples.
 * Prometheus refuses a scrape that repeats a family's `# TYPE` line, which concatenating one
 * `exportPrometheusMetrics()` per queue would do.
 */
export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, { help?: string; type?: string; samples: string[] }>();
  const family = (name: string) => {
    let entry = families.get(name);
    if (!entry) families.set(name, (entry = { samples: [] }));
    return entry;
  };
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const comment = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (comment) {
        const entry = family(comment[2]);
        if (comment[1] === 'HELP') entry.help ??= line;
        else entry.type ??= line;
        continue;
      }
      if (line.startsWith('#')) continue;
      const name = /^[^{\s]+/.exec(line)?.[0] ?? line;
      const base = families.has(name) ? name : name.replace(/_(bucket|sum|count|total)$/, '');
      family(families.has(base) ? base : name).samples.push(line);
    }
  }
  const out: string[] = [];
  for (const entry of families.values()) {
    if (entry.help) out.push(entry.help);
    if (entry.type) out.push(entry.type);
    out.push(...entry.samples);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Seconds since the oldest job of `queue`'s wait list was added; 0 when none waits. */
export async function oldestWaitingSeconds(queue: Queue, now = Date.now()): Promise<number> {
  // The wait list takes new jobs at its head: ascending order starts with the oldest.
  const [oldest] = await queue.getJobs(['wait'], 0, 0, true);
  return oldest ? Math.max(0, (now - oldest.timestamp) / 1000) : 0;
}

/** The queue metrics of `queues` as one text exposition (see the file comment). */
export async function queueExposition(queues: readonly Queue[], now = Date.now()): Promise<string> {
  const [counts, ages] = await Promise.all([Promise.all(queues.map((q) => q.exportPrometheusMetrics())), Promise.all(queues.map((q) => oldestWaitingSeconds(q, now)))]);
  const oldest = [
    '# HELP xyp_queue_oldest_waiting_seconds Age of the oldest job waiting in the queue (its wait list), 0 when none waits',
    '# TYPE xyp_queue_oldest_waiting_seconds gauge',
    ...queues.map((q, i) => `xyp_queue_oldest_waiting_seconds{queue="${labelValue(q.name)}"} ${ages[i]}`),
  ].join('\n');
  return mergeExpositions([...counts, queues.length ? oldest : '']);
}
