import type { RunEvent } from '@xyp/contracts';

/** When a stage instance was queued, started and ended, from the run's events. */
export interface InstanceTiming {
  queuedAt?: string;
  /** The first attempt's start. */
  startedAt?: string;
  /** The last completion (or skip, for work already committed). */
  endedAt?: string;
  /** Seconds from the first start to the end: the instance's own time, retries included. */
  runSeconds?: number;
  /** Seconds from queued to started: time spent waiting for a free worker. */
  waitSeconds?: number;
  /** How many times a worker started it (1 unless a worker died or a job was retried). */
  attempts: number;
}

const seconds = (from: string, to: string) => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);

/**
 * Each instance's timing from the run's event stream, keyed by instance id
 * (`stage` or `stage#instance`). Events of the run as a whole (stage `run`) are left out.
 */
export function instanceTimings(events: readonly RunEvent[]): Map<string, InstanceTiming> {
  const timings = new Map<string, InstanceTiming>();
  for (const event of events) {
    const id = event.instance ? `${event.stage}#${event.instance}` : event.stage;
    const timing = timings.get(id) ?? { attempts: 0 };
    if (event.type === 'stage-queued') timing.queuedAt ??= event.at;
    else if (event.type === 'stage-started') {
      timing.startedAt ??= event.at;
      timing.attempts += 1;
    } else if (event.type === 'stage-completed' || event.type === 'stage-skipped') timing.endedAt = event.at;
    else continue;
    timings.set(id, timing);
  }
  for (const timing of timings.values()) {
    if (timing.startedAt && timing.endedAt) timing.runSeconds = seconds(timing.startedAt, timing.endedAt);
    if (timing.queuedAt && timing.startedAt) timing.waitSeconds = seconds(timing.queuedAt, timing.startedAt);
  }
  return timings;
}

/** Seconds from the run's creation to its close. */
export function wallSeconds(report: { createdAt: string; closedAt: string }): number {
  return seconds(report.createdAt, report.closedAt);
}

/** `1.2 s`, `3 min 05 s`: a duration a person reads at a glance. */
export function formatSeconds(value: number | undefined): string {
  if (value === undefined) return '—';
  if (value < 60) return `${value.toFixed(1)} s`;
  const total = Math.round(value);
  const minutes = Math.floor(total / 60);
  return `${minutes} min ${String(total - 60 * minutes).padStart(2, '0')} s`;
}
