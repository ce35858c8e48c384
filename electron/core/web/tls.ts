/**
 * HTTPS for `icmpcap serve --listen` beyond loopback: the user's own certificate (--tls-cert/--tls-key),
 * or a self-signed one made on first use and kept in $XDG_CONFIG_HOME/icmpcap/tls (key mode 0600). Its
 * SHA-256 fingerprint is printed so the user can check it in the browser's warning page.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** SHA-256 fingerprint of the certificate, as browsers show it (AA:BB:...). */
  fingerprint: string;
  /** Where the certificate is, and whether it was made just now. */
  certPath: string;
  created: boolean;
}

export function defaultTlsDir(): string {
  const config = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(config, 'icmpcap', 'tls');
}

/** Reads a certificate and key the user gave; says what is wrong in words. */
export function loadTls(certPath: string, keyPath: string): TlsMaterial {
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certPath, 'utf8');
    key = readFileSync(keyPath, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the TLS certificate or key: ${(err as Error).message}`);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new Error(`${certPath} is not a PEM certificate`);
  }
  return { cert, key, fingerprint: x509.fingerprint256, certPath, created: false };
}

/** The names and addresses a self-signed certificate should cover when listening on `listen`. */
function altNames(listen: string): { type: 2 | 7; value?: string; ip?: string }[] {
  const ips = new Set<string>(['127.0.0.1', '::1']);
  if (isIP(listen) && listen !== '0.0.0.0' && listen !== '::') ips.add(listen);
  if (listen === '0.0.0.0' || listen === '::') {
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (!a.internal && !a.address.startsWith('fe80')) ips.add(a.address);
    }
  }
  const names = new Set<string>(['localhost', hostname()]);
  if (!isIP(listen)) names.add(listen);
  return [
    ...[...names].map((value) => ({ type: 2 as const, value })),
    ...[...ips].map((ip) => ({ type: 7 as const, ip })),
  ];
}

/** The kept self-signed certificate when it covers `listen`, else a new one (kept for next time). */
export async function selfSignedTls(listen: string, dir = defaultTlsDir()): Promise<TlsMaterial> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    const kept = loadTls(certPath, keyPath);
    const x509 = new X509Certificate(kept.cert);
    const covers =
      listen === '0.0.0.0' || listen === '::'
        ? true
        : isIP(listen)
          ? x509.checkIP(listen) !== undefined
          : x509.checkHost(listen) !== undefined;
    if (covers && new Date(x509.validTo).getTime() > Date.now() + 86_400_000) return kept;
  }
  const notAfter = new Date(Date.now() + 825 * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: `icmpcap on ${hostname()}` }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: altNames(listen) },
    ],
  });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(keyPath, pems.private, { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  writeFileSync(certPath, pems.cert, { mode: 0o644 });
  return {
    cert: pems.cert,
    key: pems.private,
    fingerprint: fingerprintOf(pems.cert),
    certPath,
    created: true,
  };
}

function fingerprintOf(cert: string): string {
  try {
    return new X509Certificate(cert).fingerprint256;
  } catch {
    return createHash('sha256').update(cert).digest('hex');
  }
}
