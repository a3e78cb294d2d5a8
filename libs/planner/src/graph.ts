/**
 * The dependency graph of a plan: nodes are instance ids, `needs` maps each node to the nodes it
 * runs after. Pure functions; the order of the result follows the order of `nodes`.
 */

/** A cycle as the path that closes it (`a -> b -> a`), or null when the graph is a DAG. */
export function findCycle(nodes: readonly string[], needs: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | null => {
    if (state.get(node) === 'done') return null;
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node];
    state.set(node, 'open');
    path.push(node);
    for (const next of needs.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of nodes) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

/** Nodes so that each comes after everything it needs (stable: spec order where free). Assumes no cycle. */
export function topologicalOrder(nodes: readonly string[], needs: ReadonlyMap<string, readonly string[]>): string[] {
  const placed = new Set<string>();
  const order: string[] = [];
  const place = (node: string): void => {
    if (placed.has(node)) return;
    placed.add(node);
    for (const next of needs.get(node) ?? []) if (nodes.includes(next)) place(next);
    order.push(node);
  };
  for (const node of nodes) place(node);
  return order;
}
