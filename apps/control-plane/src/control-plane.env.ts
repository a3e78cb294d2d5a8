import { join } from 'node:path';
import { z } from 'zod';
import { PlatformEnv, envPort } from '@xyp/config';

export const ControlPlaneEnv = PlatformEnv.extend({
  XYP_CONTROL_PLANE_HTTP_PORT: envPort().default(3000),
  XYP_CONTROL_PLANE_GRPC_PORT: z.union([z.literal('0').transform(() => 0), envPort()]).default(50051),
  XYP_BOARD_USER: z.string().min(1, 'must not be empty').default('admin'),
  /** No default: Bull Board can retry and delete jobs, so it never runs with a known password. */
  XYP_BOARD_PASSWORD: z.string({ error: 'required, Bull Board credentials' }).min(8, 'must be at least 8 characters'),
  XYP_SAMPLE_CORPUS: z.string().default(join(__dirname, '..', '..', '..', 'data', 'sample', 'corpus.jsonl')),
});
export type ControlPlaneEnv = z.output<typeof ControlPlaneEnv>;
export const CONTROL_PLANE_ENV = Symbol('CONTROL_PLANE_ENV');
