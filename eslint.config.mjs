// One lint config for every project. Module boundaries come from the Nx tags in each
// project.json (root README, Architecture), on two axes:
// - type: apps import libs, libs never import apps, pure-algorithm libs (type:algorithm) import no
//   I/O lib and no Node built-in, and the losses and update rules on the engine (type:ml: ufrm,
//   ppo) import the engine, pure algorithms and contracts only — no store, queue, config or file I/O;
// - scope: an app imports its own capability's libs, the platform and the shared libs (and the
//   engine, for trainer, reward and rlhf); the engine imports shared libs only.
import { builtinModules } from 'node:module';
import { createProjectGraphAsync, readCachedProjectGraph } from '@nx/devkit';
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// `@nx/enforce-module-boundaries` reads Nx's cached project graph (.nx/workspace-data) and, where
// there is none (a fresh clone, `eslint .` before any `nx` command), prints a warning and skips
// itself: lint passes whatever is imported. A stale graph misses projects added since. So the graph
// is computed here, before any file is linted, which also writes that cache; if it cannot be built,
// or the cache cannot be read back (NX_CACHE_PROJECT_GRAPH=false), loading this config fails and
// eslint exits 2.
const projectGraph = await createProjectGraphAsync({ exitOnError: false });
const cachedGraph = (() => {
  try {
    return readCachedProjectGraph();
  } catch (error) {
    throw new Error(`eslint.config.mjs: Nx wrote no project graph cache (is NX_CACHE_PROJECT_GRAPH=false?), so @nx/enforce-module-boundaries would skip every file: ${error.message.split('\n')[0]}`);
  }
})();
const projects = Object.values(projectGraph.nodes).map((node) => ({ name: node.name, root: node.data.root, tags: node.data.tags ?? [] }));
const missing = projects.filter((project) => !(project.name in cachedGraph.nodes)).map((project) => project.name);
if (missing.length > 0) {
  throw new Error(`eslint.config.mjs: the cached Nx project graph lacks ${missing.join(', ')}; @nx/enforce-module-boundaries would skip them`);
}

const SCOPES = ['scope:shared', 'scope:platform', 'scope:corpus', 'scope:engine', 'scope:trainer', 'scope:reward', 'scope:rlhf', 'scope:synthesis', 'scope:tools'];
const TYPES = ['type:app', 'type:tool', 'type:contract', 'type:io', 'type:algorithm', 'type:engine', 'type:ml'];
// A project with no scope (or no type) would be held by no rule of that axis: refuse it by name.
for (const project of projects) {
  for (const [axis, allowed] of [['scope', SCOPES], ['type', TYPES]]) {
    const tags = project.tags.filter((tag) => tag.startsWith(`${axis}:`));
    if (tags.length !== 1 || !allowed.includes(tags[0])) {
      throw new Error(`eslint.config.mjs: project ${project.name} (${project.root}/project.json) needs exactly one ${axis} tag, one of ${allowed.join(', ')} (has ${tags.join(', ') || 'none'})`);
    }
  }
}

const typeConstraints = [
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:contract', 'type:io', 'type:algorithm', 'type:engine', 'type:ml'] },
  { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['type:contract', 'type:io', 'type:algorithm', 'type:engine', 'type:ml'] },
  { sourceTag: 'type:io', onlyDependOnLibsWithTags: ['type:contract', 'type:io', 'type:algorithm'] },
  { sourceTag: 'type:engine', onlyDependOnLibsWithTags: ['type:contract', 'type:io', 'type:algorithm', 'type:engine', 'type:ml'] },
  { sourceTag: 'type:ml', onlyDependOnLibsWithTags: ['type:contract', 'type:algorithm', 'type:engine'] },
  { sourceTag: 'type:algorithm', onlyDependOnLibsWithTags: ['type:contract', 'type:algorithm'] },
  { sourceTag: 'type:contract', onlyDependOnLibsWithTags: ['type:contract'] },
];

/**
 * Scopes: the capability a project belongs to. Tests (`*.spec.ts`) may also use the platform
 * (a real store, `@xyp/testing`); the type rules still hold for them.
 */
function scopeConstraints({ spec }) {
  const platform = ['scope:platform', 'scope:shared'];
  const constraints = [
    { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
    { sourceTag: 'scope:platform', onlyDependOnLibsWithTags: platform },
    { sourceTag: 'scope:engine', onlyDependOnLibsWithTags: ['scope:engine', 'scope:shared'] },
    { sourceTag: 'scope:corpus', onlyDependOnLibsWithTags: ['scope:corpus', ...platform] },
    // The synthesis app serves the run's checkpoints as its embedded models (`@xyp/openai-server`, an
    // engine lib of the rlhf scope) and scores answers with the UFRM (`@xyp/reward-serving`); its libs
    // see only their own scope and the platform.
    { sourceTag: 'scope:synthesis', onlyDependOnLibsWithTags: ['scope:synthesis', 'scope:engine', 'scope:reward', 'scope:rlhf', ...platform] },
    { allSourceTags: ['scope:synthesis', 'type:io'], onlyDependOnLibsWithTags: ['scope:synthesis', ...platform] },
    { allSourceTags: ['scope:synthesis', 'type:algorithm'], onlyDependOnLibsWithTags: ['scope:synthesis', ...platform] },
    // The reward and RLHF stages run their training jobs on the engine runner (`@xyp/local-engine`,
    // tagged `runner:engine`), which is the trainer's lib because it runs every job kind.
    { sourceTag: 'scope:reward', onlyDependOnLibsWithTags: ['scope:reward', 'scope:engine', 'runner:engine', ...platform] },
    { sourceTag: 'scope:rlhf', onlyDependOnLibsWithTags: ['scope:rlhf', 'scope:engine', 'runner:engine', ...platform] },
    // The trainer's libs run every job kind on an engine (local-engine: CPT, SFT, reward model,
    // PPO) and read the corpus stage's datasets (training-data: @xyp/bucketing); the trainer app
    // itself imports only its own scope, the engine and the platform.
    { sourceTag: 'scope:trainer', onlyDependOnLibsWithTags: ['scope:trainer', 'scope:engine', 'scope:reward', 'scope:rlhf', 'scope:corpus', ...platform] },
    { allSourceTags: ['scope:trainer', 'type:app'], onlyDependOnLibsWithTags: ['scope:trainer', 'scope:engine', ...platform] },
    { sourceTag: 'scope:tools', onlyDependOnLibsWithTags: ['*'] },
  ];
  if (!spec) return constraints;
  return constraints.map((constraint) =>
    constraint.onlyDependOnLibsWithTags.includes('*') ? constraint : { ...constraint, onlyDependOnLibsWithTags: [...new Set([...constraint.onlyDependOnLibsWithTags, 'scope:platform'])] },
  );
}

const moduleBoundaries = ({ spec }) => [
  'error',
  { enforceBuildableLibDependency: false, allow: [], depConstraints: [...typeConstraints, ...scopeConstraints({ spec })] },
];

// Pure algorithms: no Node built-in (`node:fs`, bare `fs` alike), no require, no dynamic import of one.
const algorithmRoots = projects.filter((project) => project.tags.includes('type:algorithm')).map((project) => project.root);
const NO_BUILTINS = 'a type:algorithm project is plain functions over plain data: no Node built-in (no I/O, no clock); take what you need as an argument';

export default [
  { ignores: ['**/node_modules/**', '**/dist/**', 'libs/grpc/src/generated/**', '.nx/**'] },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': moduleBoundaries({ spec: false }),
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.spec.ts'],
    rules: { '@nx/enforce-module-boundaries': moduleBoundaries({ spec: true }) },
  },
  {
    files: algorithmRoots.map((root) => `${root}/**/*.ts`),
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: builtinModules.map((name) => ({ name, message: NO_BUILTINS })),
          patterns: [{ group: ['node:*'], message: NO_BUILTINS }],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "ImportExpression[source.value=/^node:/]", message: NO_BUILTINS },
        { selector: "CallExpression[callee.name='require']", message: NO_BUILTINS },
      ],
    },
  },
  {
    files: ['**/*.spec.ts', 'tools/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
];
