// One test runner for every project. SWC compiles the sources so that NestJS
// decorators keep their design-time metadata; path aliases come from tsconfig.base.json.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

const root = dirname(fileURLToPath(import.meta.url));
const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')) as {
  compilerOptions: { paths: Record<string, string[]> };
};
const alias = Object.fromEntries(
  Object.entries(tsconfig.compilerOptions.paths).map(([name, [target]]) => [name, resolve(root, target)]),
);

/** Every folder with a project.json under apps/, libs/ and tools/ is one Vitest project. */
function projectRoots(): { name: string; dir: string }[] {
  const found: { name: string; dir: string }[] = [];
  for (const group of ['apps', 'libs', 'tools']) {
    const groupDir = join(root, group);
    if (!existsSync(groupDir)) continue;
    for (const entry of readdirSync(groupDir)) {
      const projectFile = join(groupDir, entry, 'project.json');
      if (!existsSync(projectFile)) continue;
      const { name } = JSON.parse(readFileSync(projectFile, 'utf8')) as { name: string };
      found.push({ name, dir: join(group, entry) });
    }
  }
  return found;
}

const swcPlugin = () =>
  swc.vite({
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      target: 'es2022',
      keepClassNames: true,
    },
  });

export default defineConfig({
  test: {
    // Makes sure the tests' Redis answers (XYP_TEST_REDIS_URL, else XYP_REDIS_URL, else
    // 127.0.0.1:6379), starting a local one when none does; fails at once otherwise.
    globalSetup: [join(root, 'libs/testing/src/global-setup.ts')],
    projects: projectRoots().map(({ name, dir }) => ({
      plugins: [swcPlugin()],
      resolve: { alias },
      test: {
        name,
        root: join(root, dir),
        include: ['**/*.spec.ts'],
        environment: 'node',
        testTimeout: 60_000,
        hookTimeout: 60_000,
        pool: 'forks',
      },
    })),
  },
});
