import { Controller, Get, Headers, Inject, Optional, Res, UnauthorizedException } from '@nestjs/common';
import type { Registry } from 'prom-client';
import { sameSecret } from '@xyp/config';
import type { StageName } from '@xyp/contracts';
import { StageProducer } from '@xyp/queue';
import { METRICS_REGISTRY, queueExposition } from '@xyp/telemetry';

/** The queues whose metrics a service exports: those it works and those it produces to. */
export const METRICS_QUEUES = Symbol('METRICS_QUEUES');

/** Who may read `/metrics` (from `XYP_METRICS_TOKEN`); absent or without a token, anyone who reaches the port. */
export const METRICS_ACCESS = Symbol('METRICS_ACCESS');
export interface MetricsAccess {
  token?: string;
}

/**
 * `/metrics` of every service, for Prometheus: the process's registry (`METRICS_REGISTRY`: process
 * metrics, stage job durations and outcomes, training gauges, whatever the app adds, e.g. the LLM
 * gateway's `xyp_llm_*`) and, per queue the service works or produces to, BullMQ's job counts
 * (`bullmq_job_count{queue,state}`, which KEDA's Prometheus scaler reads) and the age of the oldest
 * waiting job. With `XYP_METRICS_TOKEN` set it wants `Authorization: Bearer <token>`; without, it is
 * open to whoever reaches the HTTP port, which must then stay inside the cluster.
 */
@Controller()
export class MetricsController {
  constructor(
    @Inject(METRICS_REGISTRY) private readonly registry: Registry,
    private readonly producer: StageProducer,
    @Inject(METRICS_QUEUES) private readonly queues: readonly StageName[],
    @Optional() @Inject(METRICS_ACCESS) private readonly access?: MetricsAccess,
  ) {}

  @Get('metrics')
  async metrics(@Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) response: { setHeader(name: string, value: string): unknown }): Promise<string> {
    const token = this.access?.token;
    if (token) {
      const given = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
      if (!given || !sameSecret(given, token)) {
        response.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new UnauthorizedException(given ? '/metrics: the bearer token does not match XYP_METRICS_TOKEN' : '/metrics wants Authorization: Bearer <XYP_METRICS_TOKEN>');
      }
    }
    const [own, queues] = await Promise.all([this.registry.metrics(), queueExposition(this.queues.map((stage) => this.producer.queue(stage)))]);
    // Set here, not by a decorator: a refusal above is JSON.
    response.setHeader('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
    return `${own}\n${queues}`;
  }
}
