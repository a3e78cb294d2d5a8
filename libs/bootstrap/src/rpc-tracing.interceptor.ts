import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Observable } from 'rxjs';
import { SpanKind, endSpan, startSpan, tracingEnabled, withTelemetryScope, type TraceContext } from '@xyp/telemetry';

/** The W3C trace context a gRPC caller sent in its metadata (`traceparent`, `tracestate`), if any. */
function callerTrace(metadata: unknown): TraceContext | undefined {
  const get = (metadata as { get?: (key: string) => unknown[] } | undefined)?.get;
  if (typeof get !== 'function') return undefined;
  const [traceparent] = get.call(metadata, 'traceparent');
  const [tracestate] = get.call(metadata, 'tracestate');
  return typeof traceparent === 'string' ? { traceparent, ...(typeof tracestate === 'string' ? { tracestate } : {}) } : undefined;
}

/**
 * With tracing on, every gRPC call (SubmitRun above all) runs in a server span: a child of the
 * caller's `traceparent` metadata when it sent one, else a new trace. The handler runs inside the
 * span's telemetry scope, so the jobs it adds (the run's first stage jobs) carry its context.
 * Off, or for HTTP, it does nothing.
 */
@Injectable()
export class RpcTracingInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'rpc' || !tracingEnabled()) return next.handle();
    const method = `${context.getClass().name}.${context.getHandler().name}`;
    const span = startSpan(method, { kind: SpanKind.SERVER, parent: callerTrace(context.getArgByIndex(1)), attributes: { 'rpc.system': 'grpc', 'rpc.method': context.getHandler().name } });
    return new Observable((subscriber) => {
      const subscription = withTelemetryScope({ fields: {}, ...(span ? { span } : {}) }, () =>
        next.handle().subscribe({
          next: (value) => subscriber.next(value),
          error: (error: unknown) => {
            endSpan(span, {}, error);
            subscriber.error(error);
          },
          complete: () => {
            endSpan(span);
            subscriber.complete();
          },
        }),
      );
      return () => subscription.unsubscribe();
    });
  }
}
