import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { experimental } from '@grpc/grpc-js';

type CertificateProvider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** The server's TLS files (`XYP_GRPC_TLS_CERT`, `_KEY`, `_CA`). */
export interface TlsFilePaths {
  cert: string;
  key: string;
  ca?: string;
}

/** PEM bytes of those files. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

/**
 * Why the material cannot serve (unparsable certificate, key or CA, or a key that is not the
 * certificate's), or undefined when it can.
 */
export function tlsMaterialProblem(material: TlsMaterial): string | undefined {
  const step = (what: string, check: () => void): string | undefined => {
    try {
      check();
      return undefined;
    } catch (error) {
      return `${what}: ${error instanceof Error ? error.message : String(error)}`;
    }
  };
  let cert: X509Certificate | undefined;
  let key: KeyObject | undefined;
  return (
    step('the certificate does not parse', () => (cert = new X509Certificate(material.cert))) ??
    step('the private key does not parse', () => (key = createPrivateKey(material.key))) ??
    step('the key is not the certificate\'s', () => {
      if (!cert?.checkPrivateKey(key as KeyObject)) throw new Error('key values mismatch');
    }) ??
    (material.ca ? step('the CA does not parse', () => new X509Certificate(material.ca as Buffer)) : undefined) ??
    step('TLS refuses the files', () => createSecureContext({ cert: material.cert, key: material.key, ...(material.ca ? { ca: material.ca } : {}) }))
  );
}

/**
 * The server's certificate, key and CA, re-read when one of their files changes, as a grpc-js
 * `CertificateProvider` (identity and CA): a server built on it hands the new material to new
 * connections (`setSecureContext`); open connections keep the one they started with. cert-manager
 * renews a certificate into its mounted Secret; a Kubernetes secret volume swaps a symlink, which
 * file events miss, so the files are polled by stat (as the token file is).
 *
 * Material that cannot be read, does not parse, or whose key is not the certificate's keeps what was
 * served before and says so through `warn` (grpc-js's own file watcher would stop serving TLS
 * then); the change is taken when the files agree again (a certificate and key copied one after the
 * other). Unchanged bytes notify nobody.
 */
export class WatchedTlsFiles implements CertificateProvider {
  private current: TlsMaterial;
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly caListeners = new Set<CaListener>();
  private readonly onChange = (): void => this.reload();
  private watching = false;

  constructor(
    readonly paths: TlsFilePaths,
    initial: TlsMaterial,
    private readonly warn: (line: string) => void,
    private readonly intervalMs = 2000,
  ) {
    const problem = tlsMaterialProblem(initial);
    if (problem) throw new Error(`TLS files ${this.describe()}: ${problem}`);
    this.current = initial;
  }

  /** What is served now. */
  get material(): TlsMaterial {
    return this.current;
  }

  /** Reads the files now and serves them when they are good and differ (the poll calls it on every change). */
  reload(): void {
    let next: TlsMaterial;
    try {
      next = { cert: readFileSync(this.paths.cert), key: readFileSync(this.paths.key), ...(this.paths.ca ? { ca: readFileSync(this.paths.ca) } : {}) };
    } catch (error) {
      this.warn(`TLS files ${this.describe()}: cannot read them (${(error as NodeJS.ErrnoException).code ?? String(error)}); serving the certificate read before`);
      return;
    }
    const same = next.cert.equals(this.current.cert) && next.key.equals(this.current.key) && (next.ca ?? Buffer.alloc(0)).equals(this.current.ca ?? Buffer.alloc(0));
    if (same) return;
    const problem = tlsMaterialProblem(next);
    if (problem) {
      this.warn(`TLS files ${this.describe()}: ${problem}; serving the certificate read before`);
      return;
    }
    this.current = next;
    for (const listener of this.identityListeners) listener({ certificate: next.cert, privateKey: next.key });
    if (next.ca) for (const listener of this.caListeners) listener({ caCertificate: next.ca });
  }

  /** Stops polling the files. */
  close(): void {
    if (!this.watching) return;
    this.watching = false;
    for (const path of this.files()) unwatchFile(path, this.onChange);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    this.start();
    const { cert, key } = this.current;
    process.nextTick(listener, { certificate: cert, privateKey: key });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    this.start();
    process.nextTick(listener, this.current.ca ? { caCertificate: this.current.ca } : null);
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  private start(): void {
    if (this.watching) return;
    this.watching = true;
    for (const path of this.files()) watchFile(path, { interval: this.intervalMs, persistent: false }, this.onChange);
  }

  private files(): string[] {
    return [this.paths.cert, this.paths.key, ...(this.paths.ca ? [this.paths.ca] : [])];
  }

  private describe(): string {
    return this.files().join(', ');
  }
}
