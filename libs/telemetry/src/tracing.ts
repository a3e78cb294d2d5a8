/**
 * Switchable OpenTelemetry tracing. Off by default, and then free: no tracer provider exists,
 * `startSpan` returns undefined and nothing is added to job data. On (`startTracing`, from
 * `XYP_OTEL` at a service's start), spans go to the exporter given — JSON lines
 * (`JsonLinesSpanExporter`) or OTLP/HTTP JSON (`OtlpHttpJsonExporter`) — and a span's W3C trace
 * context (`traceparent`, https://www.w3.org/TR/trace-context/) travels in the data of the jobs
 * added while it is current, so each worker's span is a child of the span that added its job.
 *
 * Spans are parented explicitly (the current span is the one of the work's `TelemetryScope`), so no
 * global OpenTelemetry context manager is registered.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { currentScope } from './job-context';

/** A W3C trace context as carried in job data (`trace` of a stage job's payload). */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

export type TracingMode = 'off' | 'console' | 'otlp';
export const TRACING_MODES: readonly TracingMode[] = ['off', 'console', 'otlp'];

export interface TracingOptions {
  exporter: SpanExporter;
  /** Batch spans before export (default true); false exports each span as it ends (tests). */
  batch?: boolean;
}

/** The instrumentation scope every span of the project is recorded under. */
export const TRACER_NAME = 'xyp';

const propagator = new W3CTraceContextPropagator();
let active: { provider: BasicTracerProvider; tracer: Tracer } | undefined;

/** Turns tracing on for this process (replacing an earlier set-up); `stopTracing` flushes and turns it off. */
export function startTracing(options: TracingOptions): void {
  const previous = active;
  const processor = options.batch === false ? new SimpleSpanProcessor(options.exporter) : new BatchSpanProcessor(options.exporter);
  const provider = new BasicTracerProvider({ spanProcessors: [processor] });
  active = { provider, tracer: provider.getTracer(TRACER_NAME) };
  void previous?.provider.shutdown();
}

/** Exports the spans not yet exported and turns tracing off. */
export async function stopTracing(): Promise<void> {
  const stopping = active;
  active = undefined;
  await stopping?.provider.shutdown();
}

export function tracingEnabled(): boolean {
  return active !== undefined;
}

/** The span context a `traceparent` (and `tracestate`) names, or undefined for a missing or malformed one. */
export function spanContextOf(context: TraceContext | undefined): SpanContext | undefined {
  if (!context || typeof context.traceparent !== 'string') return undefined;
  const carrier: Record<string, string> = { traceparent: context.traceparent, ...(context.tracestate ? { tracestate: context.tracestate } : {}) };
  return trace.getSpanContext(propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter));
}

/** The W3C trace context of `span`, to carry in a job's data or a call's metadata. */
export function traceContextOf(span: Span): TraceContext {
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  return { traceparent: carrier.traceparent, ...(carrier.tracestate ? { tracestate: carrier.tracestate } : {}) };
}

/** The trace context of the current span (the work in progress), or undefined when tracing is off or there is none. */
export function currentTraceContext(): TraceContext | undefined {
  const span = currentScope()?.span;
  return span && active ? traceContextOf(span) : undefined;
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /**
   * The parent: a trace context received (job data, call metadata). Without one, the current
   * span's; without that, the span starts a new trace.
   */
  parent?: TraceContext;
}

/** Starts a span, or returns undefined when tracing is off. The caller ends it (`endSpan`). */
export function startSpan(name: string, options: SpanOptions = {}): Span | undefined {
  if (!active) return undefined;
  const remote = spanContextOf(options.parent);
  const current = currentScope()?.span;
  const parent = remote ? trace.setSpanContext(ROOT_CONTEXT, remote) : current ? trace.setSpan(ROOT_CONTEXT, current) : ROOT_CONTEXT;
  return active.tracer.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, ...(options.attributes ? { attributes: options.attributes } : {}) }, parent);
}

/** Ends `span` with its outcome: an error sets the status ERROR with its message. */
export function endSpan(span: Span | undefined, attributes: Attributes = {}, error?: unknown): void {
  if (!span) return;
  span.setAttributes(attributes);
  if (error !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    if (error instanceof Error) span.recordException(error);
  }
  span.end();
}

export { SpanKind };
