import { appendFileSync } from 'node:fs';
import { Global, Injectable, Module, type DynamicModule, type LoggerService, type LogLevel, type OnApplicationShutdown } from '@nestjs/common';
import { JsonLinesSpanExporter, OtlpHttpJsonExporter, serviceLogger, startTracing, stopTracing, type SpanSource } from '@xyp/telemetry';
import { METRICS_ACCESS, type MetricsAccess } from './metrics.controller';
import type { TelemetryEnv } from './telemetry-env';

/**
 * A service's logs and tracing as its environment says (`TelemetryEnv`): the logger Nest gets, and
 * tracing started (its spans exported by `XYP_OTEL`'s exporter) before anything else runs.
 */
export function startTelemetry(source: SpanSource, env: TelemetryEnv, levels: LogLevel[]): LoggerService {
  const logger = serviceLogger({ service: source.service, instance: source.instance, format: env.XYP_LOG_FORMAT, levels });
  if (env.XYP_OTEL === 'console') {
    const file = env.XYP_OTEL_FILE;
    startTracing({ exporter: new JsonLinesSpanExporter(source, file ? (line) => appendFileSync(file, line) : (line) => process.stderr.write(line)) });
  } else if (env.XYP_OTEL === 'otlp' && env.XYP_OTEL_ENDPOINT) {
    startTracing({ exporter: new OtlpHttpJsonExporter(env.XYP_OTEL_ENDPOINT, source) });
  }
  return logger;
}

/** Exports the spans still buffered when the app shuts down. */
@Injectable()
class TracingShutdown implements OnApplicationShutdown {
  async onApplicationShutdown(): Promise<void> {
    await stopTracing();
  }
}

/** What `startService` adds to every app: who may read `/metrics`, and the tracing flush at shutdown. */
@Global()
@Module({})
export class ServiceTelemetryModule {
  static forRoot(env: TelemetryEnv): DynamicModule {
    const access: MetricsAccess = env.XYP_METRICS_TOKEN ? { token: env.XYP_METRICS_TOKEN } : {};
    return {
      module: ServiceTelemetryModule,
      providers: [{ provide: METRICS_ACCESS, useValue: access }, TracingShutdown],
      exports: [METRICS_ACCESS],
    };
  }
}
