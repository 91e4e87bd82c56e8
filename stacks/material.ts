/**
 * Local inputs of the program besides config: the indexer bundle, the TLS files and the mirrors'
 * keys named in the config (read on the machine running `pulumi up`). The TLS key is returned as a
 * secret.
 */
import * as pulumi from '@pulumi/pulumi';
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError } from '../lambda-free-tools/src/errors';
import { readMirrorKeys, type MirrorKeys } from '../infra/mirrors';
import { fileSha256 } from '../infra/plan';
import type { StackConfig } from './config';

/** The project directory (Pulumi.yaml's folder): relative config paths are taken from it. */
export const PROJECT_DIR = path.resolve(__dirname, '..');

/**
 * The apt-repo bundle to deploy: `dist/apt-repo.cjs` (built by `npm run build`), or the file named
 * by the APT_REPO_BUNDLE environment variable (tests, CI). Returns its absolute path and SHA-256.
 * Throws ConfigError when the file is missing.
 */
export function indexerBundle(): { path: string; sha256: string } {
  const file = path.resolve(PROJECT_DIR, process.env.APT_REPO_BUNDLE || 'dist/apt-repo.cjs');
  if (!fs.existsSync(file)) throw new ConfigError(file, 'the indexer bundle is missing: run `npm run build` first');
  return { path: file, sha256: fileSha256(file) };
}

/**
 * The certificate chain and key for tls.mode 'files' (paths relative to the project directory);
 * `{}` for the other modes. Throws ConfigError naming apt-repo:tls.certFile / keyFile when a file
 * cannot be read or is not PEM.
 */
export function tlsFiles(cfg: StackConfig): { cert?: string; key?: pulumi.Output<string> } {
  if (cfg.tls.mode !== 'files') return {};
  const read = (key: string, file: string, marker: RegExp) => {
    const abs = path.resolve(PROJECT_DIR, file);
    let text: string;
    try {
      text = fs.readFileSync(abs, 'utf8');
    } catch (e) {
      throw new ConfigError(`apt-repo:tls.${key}`, `cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if (!marker.test(text)) throw new ConfigError(`apt-repo:tls.${key}`, `${abs} is not a PEM file`);
    return text;
  };
  return {
    cert: read('certFile', cfg.tls.certFile, /-----BEGIN CERTIFICATE-----/),
    key: pulumi.secret(read('keyFile', cfg.tls.keyFile, /-----BEGIN [A-Z ]*PRIVATE KEY-----/)),
  };
}

/**
 * The trusted APKINDEX keys of the stack's mirrors (infra/mirrors.ts readMirrorKeys), relative
 * paths taken from the project directory. Throws ConfigError naming the key's config path.
 */
export function mirrorKeys(cfg: StackConfig): MirrorKeys {
  return readMirrorKeys(cfg, PROJECT_DIR);
}
