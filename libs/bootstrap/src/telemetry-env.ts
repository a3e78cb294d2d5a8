import { z } from 'zod';
import { envUrl } from '@xyp/config';

/**
 * What a service tells its operators, from the environment at start-up (`startService`), checked
 * like the rest of its configuration (a bad value stops it with one line naming the variable):
 *  - `XYP_LOG_FORMAT`: `text` (default, for people) or `json` (one object per line, with the
 *    run, stage instance and job ids of the job in progress);
 *  - `XYP_METRICS_TOKEN`: when set, `/metrics` wants `Authorization: Bearer <token>`;
 *  - `XYP_OTEL`: `off` (default), `console` (spans as JSON lines to `XYP_OTEL_FILE`, else stderr)
 *    or `otlp` (OTLP/HTTP JSON to `XYP_OTEL_ENDPOINT`, e.g. `http://otel-collector:4318`).
 */
export const TelemetryEnv = z
  .object({
    XYP_LOG_FORMAT: z.enum(['text', 'json'], { error: 'must be text or json' }).default('text'),
    XYP_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    XYP_OTEL: z.enum(['off', 'console', 'otlp'], { error: 'must be off, console or otlp' }).default('off'),
    XYP_OTEL_ENDPOINT: envUrl(['http', 'https']).optional(),
    XYP_OTEL_FILE: z.string().min(1).optional(),
  })
  .superRefine((env, context) => {
    if (env.XYP_OTEL === 'otlp' && !env.XYP_OTEL_ENDPOINT) {
      context.addIssue({ code: 'custom', path: ['XYP_OTEL_ENDPOINT'], message: 'must be set when XYP_OTEL=otlp (the collector, e.g. http://otel-collector:4318)' });
    }
  });
export type TelemetryEnv = z.output<typeof TelemetryEnv>;
