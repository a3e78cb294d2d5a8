/**
 * A service's logger (Nest `LoggerService`). `text` is Nest's own console format, for people;
 * `json` writes every line as one JSON object for a log collector:
 *
 *   {"time":"2025-01-01T00:00:00.000Z","level":"info","service":"corpus","instance":"corpus-0:42",
 *    "context":"CorpusBucketWorker","msg":"…","runId":"run-1","stage":"corpus.bucket",
 *    "stageInstance":"corpus.bucket#bfd","jobId":"run-1.corpus.bucket#bfd","attempt":1,"traceId":"…"}
 *
 * The run, stage, stage instance, job, attempt and trace ids come from the work in progress
 * (`currentLogFields`: the stage worker sets them around `process(job)`), so a line logged from deep
 * inside a job carries them; outside a job they are left out.
 */
import { ConsoleLogger, type LoggerService, type LogLevel } from '@nestjs/common';
import { currentLogFields } from './job-context';

export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

export interface ServiceLoggerOptions {
  service: string;
  instance: string;
  format: LogFormat;
  levels: LogLevel[];
  /** Where a line goes (default: stderr for errors and warnings, stdout for the rest). */
  write?: (line: string, level: LogLevel) => void;
}

/** The JSON `level` of each Nest level. */
const LEVEL_NAMES: Record<LogLevel, string> = { log: 'info', error: 'error', warn: 'warn', debug: 'debug', verbose: 'verbose', fatal: 'fatal' };

function defaultWrite(line: string, level: LogLevel): void {
  (level === 'error' || level === 'warn' || level === 'fatal' ? process.stderr : process.stdout).write(line);
}

/** The logger `startService` gives Nest, in the format asked for. */
export function serviceLogger(options: ServiceLoggerOptions): LoggerService {
  return options.format === 'json' ? new JsonLogger(options) : new ConsoleLogger({ logLevels: options.levels });
}

/** One JSON object per line (see the file comment). */
export class JsonLogger implements LoggerService {
  private levels: Set<LogLevel>;
  private readonly write: (line: string, level: LogLevel) => void;

  constructor(private readonly options: Omit<ServiceLoggerOptions, 'format'>) {
    this.levels = new Set(options.levels);
    this.write = options.write ?? defaultWrite;
  }

  log(message: unknown, ...params: unknown[]): void {
    this.emit('log', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.emit('error', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.emit('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.emit('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.emit('verbose', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.emit('fatal', message, params);
  }

  setLogLevels(levels: LogLevel[]): void {
    this.levels = new Set(levels);
  }

  private emit(level: LogLevel, message: unknown, params: unknown[]): void {
    if (!this.levels.has(level)) return;
    // Nest passes the context last; an error's stack comes before it (`error(message, stack, context)`).
    const strings = params.filter((p): p is string => typeof p === 'string');
    const context = strings.length > 0 ? strings[strings.length - 1] : undefined;
    const stack = level === 'error' && strings.length > 1 ? strings[0] : message instanceof Error ? message.stack : undefined;
    const line = {
      time: new Date().toISOString(),
      level: LEVEL_NAMES[level],
      service: this.options.service,
      instance: this.options.instance,
      ...(context ? { context } : {}),
      msg: textOf(message),
      ...currentLogFields(),
      ...(stack ? { stack } : {}),
    };
    this.write(`${JSON.stringify(line)}\n`, level);
  }
}

function textOf(message: unknown): string {
  if (typeof message === 'string') return message;
  if (message instanceof Error) return message.message;
  try {
    return JSON.stringify(message) ?? String(message);
  } catch {
    return String(message);
  }
}
