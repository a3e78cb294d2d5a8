/**
 * The span exporters against what receives them: OTLP/HTTP JSON posted to a real local HTTP
 * server (as an OpenTelemetry Collector's 4318 port takes it), and JSON lines.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExportResultCode } from '@opentelemetry/core';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonLinesSpanExporter, OtlpHttpJsonExporter, otlpTracesUrl } from './span-exporters';
import { SpanKind, endSpan, spanContextOf, startSpan, startTracing, stopTracing } from './tracing';

const source = { service: 'corpus', instance: 'corpus-0:1' };
const parent = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };

let server: Server | undefined;
afterEach(async () => {
  await stopTracing();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

/** A collector's traces endpoint: records each request, answers `status`. */
async function collector(status = 200): Promise<{ url: string; requests: { path: string; type: string; body: unknown }[] }> {
  const requests: { path: string; type: string; body: unknown }[] = [];
  server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({ path: request.url ?? '', type: request.headers['content-type'] ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      response.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, requests };
}

describe('OtlpHttpJsonExporter', () => {
  it('posts ended spans to <endpoint>/v1/traces in OTLP JSON: hex ids, the parent span id, numeric kind, nanosecond strings, typed attributes', async () => {
    const { url, requests } = await collector();
    startTracing({ exporter: new OtlpHttpJsonExporter(url, source), batch: false });
    const span = startSpan('corpus.bucket', { kind: SpanKind.CONSUMER, parent, attributes: { 'xyp.stage': 'corpus.bucket', 'xyp.attempt': 2, 'xyp.ratio': 0.5, 'xyp.retry': false } });
    endSpan(span, { 'xyp.outcome': 'failed' }, new Error('disk full'));
    await stopTracing();

    expect(requests).toHaveLength(1);
    expect(requests[0].path).toBe('/v1/traces');
    expect(requests[0].type).toBe('application/json');
    const body = requests[0].body as { resourceSpans: { resource: { attributes: unknown[] }; scopeSpans: { scope: { name: string }; spans: Record<string, unknown>[] }[] }[] };
    expect(body.resourceSpans[0].resource.attributes).toEqual([
      { key: 'service.name', value: { stringValue: 'corpus' } },
      { key: 'service.instance.id', value: { stringValue: 'corpus-0:1' } },
    ]);
    expect(body.resourceSpans[0].scopeSpans[0].scope.name).toBe('xyp');
    const [sent] = body.resourceSpans[0].scopeSpans[0].spans;
    expect(sent.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(sent.parentSpanId).toBe('b7ad6b7169203331');
    expect(sent.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(sent.name).toBe('corpus.bucket');
    expect(sent.kind).toBe(5); // SPAN_KIND_CONSUMER
    expect(sent.startTimeUnixNano).toMatch(/^\d{19}$/);
    expect(BigInt(sent.endTimeUnixNano as string) >= BigInt(sent.startTimeUnixNano as string)).toBe(true);
    expect(sent.attributes).toEqual(
      expect.arrayContaining([
        { key: 'xyp.stage', value: { stringValue: 'corpus.bucket' } },
        { key: 'xyp.attempt', value: { intValue: '2' } },
        { key: 'xyp.ratio', value: { doubleValue: 0.5 } },
        { key: 'xyp.retry', value: { boolValue: false } },
        { key: 'xyp.outcome', value: { stringValue: 'failed' } },
      ]),
    );
    expect(sent.status).toEqual({ code: 2, message: 'disk full' });
  });

  it('reports a refused export as FAILED, naming the URL and the status', async () => {
    const { url } = await collector(503);
    const exporter = new OtlpHttpJsonExporter(`${url}/v1/traces/`, source);
    const memory = new InMemorySpanExporter();
    startTracing({ exporter: memory, batch: false });
    endSpan(startSpan('x'));
    const result = await new Promise<{ code: number; error?: Error }>((resolve) => exporter.export(memory.getFinishedSpans(), resolve));
    expect(result.code).toBe(ExportResultCode.FAILED);
    expect(result.error?.message).toBe(`OTLP export to ${url}/v1/traces failed: HTTP 503`);
  });

  it('takes the collector root or the traces URL itself', () => {
    expect(otlpTracesUrl('http://otel:4318')).toBe('http://otel:4318/v1/traces');
    expect(otlpTracesUrl('http://otel:4318/v1/traces')).toBe('http://otel:4318/v1/traces');
  });
});

describe('JsonLinesSpanExporter and tracing off', () => {
  it('writes one JSON object per span, with its trace, span and parent ids', async () => {
    const lines: string[] = [];
    startTracing({ exporter: new JsonLinesSpanExporter(source, (line) => lines.push(line)), batch: false });
    endSpan(startSpan('pipeline.step', { parent, attributes: { 'xyp.run_id': 'r1' } }));
    expect(lines).toHaveLength(1);
    expect(lines[0].endsWith('\n')).toBe(true);
    expect(JSON.parse(lines[0])).toMatchObject({ service: 'corpus', traceId: '0af7651916cd43dd8448eb211c80319c', parentSpanId: 'b7ad6b7169203331', name: 'pipeline.step', kind: 'INTERNAL', attributes: { 'xyp.run_id': 'r1' } });
  });

  it('starts no span when tracing is off, and reads no context from a malformed traceparent', () => {
    expect(startSpan('x')).toBeUndefined();
    expect(spanContextOf({ traceparent: 'not-a-traceparent' })).toBeUndefined();
    expect(spanContextOf(parent)?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
  });
});
