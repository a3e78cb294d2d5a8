'use strict';
// Runs the workspace's TypeScript sources in Node without a build step.
// SWC compiles each .ts file on first require (legacy decorators with
// emitDecoratorMetadata, which NestJS dependency injection needs; esbuild-based
// loaders drop that metadata) and rewrites the `@xyp/*` path aliases of
// tsconfig.base.json into relative requires.
const path = require('node:path');
const fs = require('node:fs');
const { addHook } = require('pirates');
const swc = require('@swc/core');

const workspaceRoot = path.resolve(__dirname, '..', '..');
const tsconfig = JSON.parse(fs.readFileSync(path.join(workspaceRoot, 'tsconfig.base.json'), 'utf8'));

const swcOptions = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    target: 'es2022',
    baseUrl: workspaceRoot,
    paths: tsconfig.compilerOptions.paths,
    keepClassNames: true,
  },
  module: { type: 'commonjs', strictMode: true },
  sourceMaps: 'inline',
  swcrc: false,
  configFile: false,
};

process.setSourceMapsEnabled(true);

addHook(
  (code, filename) => swc.transformSync(code, { ...swcOptions, filename }).code,
  { exts: ['.ts'], ignoreNodeModules: true },
);

module.exports = { workspaceRoot, swcOptions };
