import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A throwaway certificate authority made by openssl under a directory, and what it signs. */
export interface TestCertificateAuthority {
  /** The CA's certificate, PEM. */
  cert: Buffer;
  /**
   * A P-256 key and a certificate for `subject` (`/CN=…`) signed by the CA, valid for a day, with
   * `extensions` (openssl extension lines: `subjectAltName=…`, `extendedKeyUsage=…`); the files are
   * `<name>.key`, `<name>.crt` under the CA's directory.
   */
  issue(name: string, subject: string, extensions: readonly string[]): { cert: Buffer; key: Buffer };
}

/** A CA named `name` (files `<name>.key`, `<name>.crt` in `dir`) with the subject `subject`, made by the `openssl` CLI. */
export function testCertificateAuthority(dir: string, name: string, subject: string): TestCertificateAuthority {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = (file: string) => run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file);
  key(`${name}.key`);
  run('req', '-x509', '-new', '-key', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', subject);
  return {
    cert: readFileSync(join(dir, `${name}.crt`)),
    issue(leaf, leafSubject, extensions) {
      writeFileSync(join(dir, `${leaf}.ext`), `${extensions.join('\n')}\n`);
      key(`${leaf}.key`);
      run('req', '-new', '-key', `${leaf}.key`, '-out', `${leaf}.csr`, '-subj', leafSubject);
      run('x509', '-req', '-in', `${leaf}.csr`, '-CA', `${name}.crt`, '-CAkey', `${name}.key`, '-CAcreateserial', '-out', `${leaf}.crt`, '-days', '1', '-extfile', `${leaf}.ext`);
      return { cert: readFileSync(join(dir, `${leaf}.crt`)), key: readFileSync(join(dir, `${leaf}.key`)) };
    },
  };
}
