/** Each category's loss at its first and its last point (in the order given), and the change. */
export function firstToLastLoss(points: readonly { category: string; loss: number }[]): Record<string, { before: number; after: number; change: number }> {
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  for (const p of points) {
    if (!first.has(p.category)) first.set(p.category, p.loss);
    last.set(p.category, p.loss);
  }
  return Object.fromEntries(
    [...first.keys()].sort().map((category) => {
      const before = first.get(category) as number;
      const after = last.get(category) as number;
      return [category, { before, after, change: after - before }];
    }),
  );
}
