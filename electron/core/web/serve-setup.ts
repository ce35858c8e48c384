/**
 * What `icmpcap serve` decides about security before it listens: HTTPS beyond loopback, the capture
 * folder and the upload limit. Kept apart from cli.ts so the rules sit in one place.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ServerOptions } from '../server.js';
import { type TlsMaterial, loadTls, selfSignedTls } from './tls.js';

export interface ServeSecurityArgs {
  listen?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  captures?: string | undefined;
  'max-upload-mb'?: string | undefined;
}

export const SERVE_SECURITY_OPTIONS = {
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  captures: { type: 'string' },
  'max-upload-mb': { type: 'string' },
} as const;

export const SERVE_SECURITY_USAGE = `                  --tls-cert FILE, --tls-key FILE   serve HTTPS with this certificate (PEM); beyond
                                  127.0.0.1 HTTPS is required, with a self-signed certificate made on
                                  first use (its SHA-256 fingerprint is printed) unless these are given
                  --captures DIR  pages may open the capture files in DIR (and only there); they can
                                  always upload a file, and exports are downloads
                  --max-upload-mb N   largest upload taken (default 4096)
`;

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

export interface ServeSecurity {
  tls?: TlsMaterial;
  files: NonNullable<ServerOptions['files']>;
  /** Lines to print before serving (the certificate's fingerprint). */
  notes: string[];
}

/** Throws an Error whose message says what to do. */
export async function serveSecurity(args: ServeSecurityArgs): Promise<ServeSecurity> {
  const host = args.listen ?? '127.0.0.1';
  const notes: string[] = [];
  let tls: TlsMaterial | undefined;
  if ((args['tls-cert'] === undefined) !== (args['tls-key'] === undefined)) {
    throw new Error('--tls-cert and --tls-key go together');
  }
  if (args['tls-cert'] !== undefined && args['tls-key'] !== undefined) {
    tls = loadTls(resolve(args['tls-cert']), resolve(args['tls-key']));
  } else if (!isLoopback(host)) {
    tls = await selfSignedTls(host);
    notes.push(
      `icmpcap: ${tls.created ? 'made a self-signed certificate' : 'using the self-signed certificate'} ${tls.certPath}`,
      `icmpcap: check the browser shows this SHA-256 fingerprint before you trust it: ${tls.fingerprint}`,
    );
  }
  const files: ServeSecurity['files'] = {};
  if (args.captures !== undefined) {
    const folder = resolve(args.captures);
    let isDir = false;
    try {
      isDir = statSync(folder).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new Error(`--captures takes a folder of capture files; ${folder} is not one`);
    files.captureFolder = folder;
  }
  if (args['max-upload-mb'] !== undefined) {
    const mb = Number(args['max-upload-mb']);
    if (!Number.isInteger(mb) || mb < 1 || mb > 1024 * 1024) {
      throw new Error(`--max-upload-mb takes a number of megabytes from 1, not ${args['max-upload-mb']}`);
    }
    files.maxUploadBytes = mb * 1024 * 1024;
  }
  return { ...(tls ? { tls } : {}), files, notes };
}
