/** `log softmax(z)[token]` of row b of `[rows, V]` logits, in double precision. */
export function tokenLogProb(logits: Float32Array, b: number, V: number, token: number): number {
  const row = logits.subarray(b * V, (b + 1) * V);
  let max = row[0];
  for (let i = 1; i < V; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(row[i] - max);
  return row[token] - max - Math.log(sum);
}
