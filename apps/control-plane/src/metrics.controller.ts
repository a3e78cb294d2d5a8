import { Controller, Get, Header } from '@nestjs/common';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { STAGE_NAMES } from '@xyp/contracts';
import { StageProducer } from '@xyp/queue';

/**
 * Prometheus metrics: process metrics plus BullMQ's own job counts per queue and
 * state (`bullmq_job_count{queue,state}`), which KEDA's Prometheus scaler can use to
 * scale workers (it sees prioritized and delayed jobs, unlike a Redis list length).
 */
@Controller()
export class MetricsController {
  private readonly registry = new Registry();

  constructor(private readonly producer: StageProducer) {
    collectDefaultMetrics({ register: this.registry });
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  async metrics(): Promise<string> {
    const queues = await Promise.all(STAGE_NAMES.map((stage) => this.producer.queue(stage).exportPrometheusMetrics()));
    return `${await this.registry.metrics()}\n${queues.join('\n')}\n`;
  }
}
