// One lint config for every project. Module boundaries come from the Nx tags in each
// project.json: apps import libs, libs never import apps, pure-algorithm libs import no I/O lib.
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

export default [
  { ignores: ['**/node_modules/**', '**/dist/**', 'libs/grpc/src/generated/**', '.nx/**'] },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:contract', 'type:io', 'type:algorithm', 'type:engine'] },
            { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['type:contract', 'type:io', 'type:algorithm', 'type:engine'] },
            { sourceTag: 'type:io', onlyDependOnLibsWithTags: ['type:contract', 'type:io', 'type:algorithm'] },
            { sourceTag: 'type:engine', onlyDependOnLibsWithTags: ['type:contract', 'type:io', 'type:algorithm', 'type:engine'] },
            { sourceTag: 'type:algorithm', onlyDependOnLibsWithTags: ['type:contract', 'type:algorithm'] },
            { sourceTag: 'type:contract', onlyDependOnLibsWithTags: ['type:contract'] },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.spec.ts', 'tools/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
];
