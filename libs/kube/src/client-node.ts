/**
 * `@kubernetes/client-node` 1.x is an ES module; this workspace runs as CommonJS. Under SWC's
 * CommonJS transform (`tools/runtime/register.js`) a plain `import()` is rewritten into `require()`,
 * so the services load it with a `Function`-built `import()`, which no transform touches and which
 * is Node's own dynamic import. Vitest evaluates modules in a VM context where that native import has
 * no loader (`A dynamic import callback was not specified`); there the plain `import()` is Vite's own
 * and loads the package. The type comes from the package either way.
 */
export type ClientNode = typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } });
export type KubeConfig = InstanceType<ClientNode['KubeConfig']>;
export type KubernetesObjectApi = InstanceType<ClientNode['KubernetesObjectApi']>;

const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<ClientNode>;

let loaded: Promise<ClientNode> | undefined;

export function loadClientNode(): Promise<ClientNode> {
  loaded ??= (async () => {
    try {
      return await nativeImport('@kubernetes/client-node');
    } catch (error) {
      if (!(error instanceof TypeError && /dynamic import callback/.test(error.message))) throw error;
      return import('@kubernetes/client-node');
    }
  })();
  return loaded;
}
