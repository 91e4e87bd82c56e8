/**
 * What a client server needs to use a channel (sources.list(5), deb822 `.sources` with Signed-By,
 * apt_auth.conf(5)). Credentials go in auth.conf.d (apt >= 1.8), never in the URL.
 */
import { authMachine } from '../lambda-free-tools/src/client/setupScript';
import { publicKeyFileNames } from '../lambda-free-tools/src/sign/keys';
import type { ClientCredential, StackConfig } from '../lambda-free-tools/src/settings/stackConfig';

/** Where the channel is and how clients find its key. */
export interface ClientSpec {
  /** Base URL, ending with '/': https://apt-prod.epiconcept.fr/ */
  url: string;
  codenames: string[];
  component: string;
  /** File name of the key on clients: /usr/share/keyrings/<keyName>-archive-keyring.gpg */
  keyName: string;
}

/** The client files of one channel; `sourcesList` and `sources` are keyed by codename. */
export interface ClientFiles {
  /** The path clients install the binary public key at (Signed-By). */
  keyringPath: string;
  /** One `deb [signed-by=…] <url> <codename> <component>` line per codename. */
  sourcesList: Record<string, string>;
  /** A deb822 stanza per codename, for /etc/apt/sources.list.d/<keyName>.sources. */
  sources: Record<string, string>;
}

/** The channel URL for `serverName` and the ports. */
export function channelUrl(serverName: string, tls: boolean, httpPort: number, httpsPort: number): string {
  return tls
    ? `https://${serverName}${httpsPort === 443 ? '' : `:${httpsPort}`}/`
    : `http://${serverName}${httpPort === 80 ? '' : `:${httpPort}`}/`;
}

/**
 * The URL clients of a stack use. For the dev stack (`devContainer` set) the ports are the ones
 * Docker publishes on the developer's machine (devContainer.httpPort/httpsPort), not the ones nginx
 * listens on inside the container (httpPort/httpsPort); otherwise channelUrl with the stack's ports.
 */
export function stackChannelUrl(cfg: Pick<StackConfig, 'serverName' | 'tls' | 'httpPort' | 'httpsPort' | 'devContainer'>): string {
  const ports = cfg.devContainer ?? cfg;
  return channelUrl(cfg.serverName, cfg.tls.mode !== 'none', ports.httpPort, ports.httpsPort);
}

/**
 * The channel's public key files as served from its web root: `<keyName>-archive-keyring.asc`
 * (armored) and `.gpg` (binary, what Signed-By takes), with their URLs. Both are served without
 * basic auth (still behind the IP allowlist, infra/vhost.ts), so a client can fetch the key before
 * it is given credentials.
 */
export interface PublicKeyFiles {
  /** File name of the armored key: `<keyName>-archive-keyring.asc`. */
  armored: string;
  /** File name of the binary key: `<keyName>-archive-keyring.gpg`. */
  binary: string;
  armoredUrl: string;
  binaryUrl: string;
}

/** The key file names for `keyName` and their URLs under the channel `url` (which ends with '/'). */
export function publicKeyFiles(url: string, keyName: string): PublicKeyFiles {
  const { asc: armored, gpg: binary } = publicKeyFileNames(keyName);
  return { armored, binary, armoredUrl: `${url}${armored}`, binaryUrl: `${url}${binary}` };
}

/** Renders the sources.list lines and deb822 stanzas of `c` (no secret in them). */
export function renderClientFiles(c: ClientSpec): ClientFiles {
  const keyringPath = `/usr/share/keyrings/${publicKeyFileNames(c.keyName).gpg}`;
  const sourcesList: Record<string, string> = {};
  const sources: Record<string, string> = {};
  for (const codename of c.codenames) {
    sourcesList[codename] = `deb [signed-by=${keyringPath}] ${c.url} ${codename} ${c.component}\n`;
    sources[codename] = `Types: deb\nURIs: ${c.url}\nSuites: ${codename}\nComponents: ${c.component}\nSigned-By: ${keyringPath}\n`;
  }
  return { keyringPath, sourcesList, sources };
}

/**
 * Renders one auth.conf.d entry per credential (`machine <host>[:port] login <user> password <pw>`),
 * keyed by user name. For HTTPS the machine has no scheme (apt >= 1.9.5 then applies it to https
 * only; older apt to any); for plain HTTP it needs `http://`. Secret: handle as a secret output.
 */
export function renderAuthConf(url: string, credentials: ClientCredential[]): Record<string, string> {
  const machine = authMachine(url);
  const out: Record<string, string> = {};
  for (const cr of credentials) out[cr.username] = `machine ${machine} login ${cr.username} password ${cr.password}\n`;
  return out;
}
