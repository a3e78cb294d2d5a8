import { Controller, Get, Header, Inject } from '@nestjs/common';
import { collectDefaultMetrics, Registry } from 'prom-client';

/** The registry every job's LLM gateway records its `xyp_llm_*` metrics on (one per process). */
export const LLM_METRICS = Symbol('LLM_METRICS');

export function llmMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Prometheus metrics of the synthesis service: process metrics and the gateway's per model — calls
 * by outcome, retries by reason, tokens, cost, latency, cache hits, cooldowns — summed over its jobs.
 */
@Controller()
export class SynthesisMetricsController {
  constructor(@Inject(LLM_METRICS) private readonly registry: Registry) {}

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
