import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Params } from './model';
import { nativeAdamW, nativeAdamWInPlace, nativeSumSquares } from './native';
import { nativeKernels } from './ops';

export const OptimConfig = z.object({
  lr: z.number().positive().default(3e-4),
  minLr: z.number().nonnegative().default(3e-5),
  warmupSteps: z.number().int().nonnegative().default(10),
  /** Cosine decay from `lr` to `minLr` ends here; later steps stay at `minLr`. */
  totalSteps: z.number().int().positive().default(1000),
  beta1: z.number().min(0).max(1).default(0.9),
  beta2: z.number().min(0).max(1).default(0.95),
  eps: z.number().positive().default(1e-8),
  weightDecay: z.number().nonnegative().default(0.1),
  /** Global gradient-norm clip; 0 disables it. */
  clipNorm: z.number().nonnegative().default(1),
});
export type OptimConfig = z.output<typeof OptimConfig>;
export type OptimConfigInput = z.input<typeof OptimConfig>;

/** Linear warmup to `lr` over `warmupSteps`, then cosine to `minLr` at `totalSteps`; `step` counts from 1. */
export function learningRate(c: OptimConfig, step: number): number {
  if (c.warmupSteps > 0 && step <= c.warmupSteps) return (c.lr * step) / c.warmupSteps;
  const span = Math.max(1, c.totalSteps - c.warmupSteps);
  const progress = Math.min(1, (step - c.warmupSteps) / span);
  return c.minLr + 0.5 * (c.lr - c.minLr) * (1 + Math.cos(Math.PI * progress));
}

/** Matrices decay; norm gains, biases and embeddings do not. */
function decays(name: string): boolean {
  return !/norm|_b$|emb/.test(name);
}

/**
 * AdamW with decoupled weight decay, bias correction and global-norm clipping. For gradient g of
 * parameter p at step t (all tensors the shape of p):
 *   g ← g · min(1, c / ‖G‖₂), ‖G‖₂ over every gradient
 *   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
 *   p ← p − η_t · ( (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε) + λ·p )
 * Every operation runs in a fixed order, so equal state and gradients give bit-equal parameters.
 */
export class AdamW {
  step = 0;
  readonly m: Record<string, tf.Variable> = {};
  readonly v: Record<string, tf.Variable> = {};

  constructor(
    readonly config: OptimConfig,
    private readonly params: Params,
  ) {
    for (const [name, p] of Object.entries(params)) {
      if (!p.trainable) continue;
      // Sole owners of their buffers (the zero tensors are released), so updatable in place.
      const m = tf.zerosLike(p);
      const v = tf.zerosLike(p);
      this.m[name] = tf.variable(m, false, `${p.name}.m`);
      this.v[name] = tf.variable(v, false, `${p.name}.v`);
      m.dispose();
      v.dispose();
    }
  }

  /** Applies one update; returns the gradient norm before clipping and the learning rate used. */
  apply(grads: Record<string, tf.Tensor>): { gradNorm: number; lr: number } {
    this.step += 1;
    const c = this.config;
    const lr = learningRate(c, this.step);
    const names = Object.keys(this.m).filter((name) => grads[name]);
    if (nativeKernels()) return this.applyNative(grads, names, lr);
    const gradNorm = tf.tidy(() => Math.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n])))).dataSync()[0]));
    const scale = c.clipNorm > 0 && gradNorm > c.clipNorm ? c.clipNorm / (gradNorm + 1e-6) : 1;
    const bc1 = 1 - Math.pow(c.beta1, this.step);
    const bc2 = 1 - Math.pow(c.beta2, this.step);
    tf.tidy(() => {
      for (const name of names) {
        const p = this.params[name];
        const g = scale === 1 ? grads[name] : tf.mul(grads[name], scale);
        const m = tf.add(tf.mul(this.m[name], c.beta1), tf.mul(g, 1 - c.beta1));
        const v = tf.add(tf.mul(this.v[name], c.beta2), tf.mul(tf.square(g), 1 - c.beta2));
        let update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), c.eps));
        if (decays(name) && c.weightDecay > 0) update = tf.add(update, tf.mul(p, c.weightDecay));
        this.m[name].assign(m);
        this.v[name].assign(v);
        p.assign(tf.sub(p, tf.mul(update, lr)));
      }
    });
    return { gradNorm, lr };
  }

  /**
   * The same update on the native kernels: ‖G‖₂ summed in double precision, then one fused pass per
   * parameter that reads p, g, m, v and writes p', m', v' (the TF.js path runs ~12 kernels each),
   * over p, m, v in place when no other tensor shares their buffers.
   */
  private applyNative(grads: Record<string, tf.Tensor>, names: string[], lr: number): { gradNorm: number; lr: number } {
    const c = this.config;
    let squares = 0;
    for (const name of names) squares += nativeSumSquares(grads[name]);
    const gradNorm = Math.sqrt(squares);
    const gradScale = c.clipNorm > 0 && gradNorm > c.clipNorm ? c.clipNorm / (gradNorm + 1e-6) : 1;
    const bc1 = 1 - Math.pow(c.beta1, this.step);
    const bc2 = 1 - Math.pow(c.beta2, this.step);
    tf.tidy(() => {
      for (const name of names) {
        const weightDecay = decays(name) ? c.weightDecay : 0;
        const attrs = { lr, beta1: c.beta1, beta2: c.beta2, bc1, bc2, eps: c.eps, weightDecay, gradScale };
        // Over the variables' own buffers when nothing else shares them (a clone, or the tensors a
        // checkpoint was loaded from, until the first update replaces them), else into new tensors.
        if (nativeAdamWInPlace(this.params[name], grads[name], this.m[name], this.v[name], attrs)) continue;
        const [p, m, v] = nativeAdamW(this.params[name], grads[name], this.m[name], this.v[name], attrs);
        this.m[name].assign(m);
        this.v[name].assign(v);
        this.params[name].assign(p);
      }
    });
    return { gradNorm, lr };
  }

  dispose(): void {
    for (const t of [...Object.values(this.m), ...Object.values(this.v)]) t.dispose();
  }
}
