/**
 * The two span exporters (no OTLP exporter package is needed):
 *  - `JsonLinesSpanExporter` (`XYP_OTEL=console`): one JSON object per ended span, to a file or stderr;
 *  - `OtlpHttpJsonExporter` (`XYP_OTEL=otlp`): OTLP/HTTP with the JSON encoding, POSTed to
 *    `<endpoint>/v1/traces` (an OpenTelemetry Collector's 4318 port, Jaeger, Tempo). The encoding is
 *    the protobuf messages of `opentelemetry/proto/collector/trace/v1` in proto3 JSON, with two
 *    OTLP rules (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): trace and span
 *    ids are hex strings, not base64, and enums are numbers. 64-bit integers (times) are strings.
 */
import { SpanKind, type Attributes, type AttributeValue, type HrTime } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/** Who exports: the resource attributes of every span (`service.name`, `service.instance.id`). */
export interface SpanSource {
  service: string;
  instance: string;
}

function nanos([seconds, nanoseconds]: HrTime): bigint {
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanoseconds);
}

function isoOf(time: HrTime): string {
  return new Date(Number(nanos(time) / 1_000_000n)).toISOString();
}

/** One span as a JSON line. */
export function spanRecord(span: ReadableSpan, source: SpanSource): Record<string, unknown> {
  const context = span.spanContext();
  return {
    service: source.service,
    instance: source.instance,
    traceId: context.traceId,
    spanId: context.spanId,
    ...(span.parentSpanContext ? { parentSpanId: span.parentSpanContext.spanId } : {}),
    name: span.name,
    kind: SpanKind[span.kind],
    start: isoOf(span.startTime),
    durationMs: Number(nanos(span.duration)) / 1e6,
    attributes: span.attributes,
    status: span.status,
    ...(span.events.length ? { events: span.events.map((e) => ({ name: e.name, time: isoOf(e.time), attributes: e.attributes ?? {} })) } : {}),
  };
}

/** Ended spans as JSON lines through `write` (a file's append, stderr). */
export class JsonLinesSpanExporter implements SpanExporter {
  constructor(
    private readonly source: SpanSource,
    private readonly write: (line: string) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      for (const span of spans) this.write(`${JSON.stringify(spanRecord(span, this.source))}\n`);
      done({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      done({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
    }
  }

  /** Each line is written as its span is exported: nothing is held back. */
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

type OtlpValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: OtlpValue[] } };

function otlpValue(value: AttributeValue | null | undefined): OtlpValue {
  if (Array.isArray(value)) return { arrayValue: { values: (value as unknown[]).map((v) => otlpValue(v as AttributeValue)) } };
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') return Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value };
  return { stringValue: value === null || value === undefined ? '' : String(value) };
}

function otlpAttributes(attributes: Attributes): { key: string; value: OtlpValue }[] {
  return Object.entries(attributes)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ({ key, value: otlpValue(value) }));
}

/** An `ExportTraceServiceRequest` in OTLP JSON for `spans` (see the file comment). */
export function otlpTraceRequest(spans: ReadableSpan[], source: SpanSource): unknown {
  return {
    resourceSpans: [
      {
        resource: { attributes: otlpAttributes({ 'service.name': source.service, 'service.instance.id': source.instance }) },
        scopeSpans: [
          {
            scope: { name: spans[0]?.instrumentationScope.name ?? 'xyp' },
            spans: spans.map((span) => {
              const context = span.spanContext();
              return {
                traceId: context.traceId,
                spanId: context.spanId,
                ...(span.parentSpanContext ? { parentSpanId: span.parentSpanContext.spanId } : {}),
                name: span.name,
                // OTLP's SpanKind counts from SPAN_KIND_UNSPECIFIED = 0; the API's from INTERNAL = 0.
                kind: span.kind + 1,
                startTimeUnixNano: nanos(span.startTime).toString(),
                endTimeUnixNano: nanos(span.endTime).toString(),
                attributes: otlpAttributes(span.attributes),
                events: span.events.map((e) => ({ name: e.name, timeUnixNano: nanos(e.time).toString(), attributes: otlpAttributes(e.attributes ?? {}) })),
                status: { code: span.status.code, ...(span.status.message ? { message: span.status.message } : {}) },
              };
            }),
          },
        ],
      },
    ],
  };
}

/** `endpoint` as the traces URL: `<endpoint>/v1/traces` unless it names that path already. */
export function otlpTracesUrl(endpoint: string): string {
  const trimmed = endpoint.replace(/\/+$/, '');
  return trimmed.endsWith('/v1/traces') ? trimmed : `${trimmed}/v1/traces`;
}

/** OTLP/HTTP JSON to a collector; a failed POST (status, network) reports FAILED naming the URL. */
export class OtlpHttpJsonExporter implements SpanExporter {
  private readonly url: string;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    endpoint: string,
    private readonly source: SpanSource,
    private readonly timeoutMs = 10_000,
  ) {
    this.url = otlpTracesUrl(endpoint);
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const sent = this.post(otlpTraceRequest(spans, this.source)).then(
      () => done({ code: ExportResultCode.SUCCESS }),
      (error: unknown) => done({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) }),
    );
    this.pending.add(sent);
    void sent.finally(() => this.pending.delete(sent));
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.pending);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
  }

  private async post(body: unknown): Promise<void> {
    let response: Response;
    try {
      response = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw new Error(`OTLP export to ${this.url} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) throw new Error(`OTLP export to ${this.url} failed: HTTP ${response.status}`);
  }
}
