import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Relative imports (type-only ones included) between the lib's source files. */
function importGraph(dir: string): Map<string, string[]> {
  const files = readdirSync(dir).filter((name) => name.endsWith('.ts') && !name.endsWith('.spec.ts'));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const source = readFileSync(join(dir, file), 'utf8');
    const targets = [...source.matchAll(/from '\.\/([\w.-]+)'/g)].map((match) => `${match[1]}.ts`);
    graph.set(file, targets.filter((target) => files.includes(target)));
  }
  return graph;
}

/** Every cycle found by depth-first search, as `a -> b -> a`. */
function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), next].join(' -> '));
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

describe('libs/queue imports', () => {
  it('has no import cycle between its files', () => {
    expect(cycles(importGraph(__dirname))).toEqual([]);
  });

  it('finds a cycle when there is one (the check itself)', () => {
    expect(cycles(new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']]]))).toEqual(['a.ts -> b.ts -> c.ts -> a.ts']);
  });
});
