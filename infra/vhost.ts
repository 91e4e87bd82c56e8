/**
 * The nginx virtual host of one channel (nginx 1.22, Debian 12: ngx_http_core_module,
 * ngx_http_access_module, ngx_http_auth_basic_module, ngx_http_autoindex_module,
 * ngx_http_ssl_module).
 *
 * Access is the IP allowlist AND basic auth (`satisfy all`, nginx's default), except the two public
 * key files, which need the allowlist only (a client fetches the key before it has credentials).
 * Only the public key files and the trees apt reads (/dists/, /pool/) are served, with directory
 * listings; dotfiles (e.g. .generations) and every other path are denied.
 *
 * Hardening (issue 8): every server block says `server_tokens off` itself (no nginx version in the
 * Server header or error pages, whatever nginx.conf says) and serves a symbolic link only when the
 * link and its target have the same owner (`disable_symlinks if_not_owner`, checked below the
 * document root): the `dists` -> .generations/<id>/dists flip, made by the service user, works; a
 * link planted towards a file of another owner (the htpasswd file, a private key) is refused with
 * 403. HTTPS takes the Mozilla "intermediate" profile (TLS 1.2 with ECDHE and AEAD suites only,
 * TLS 1.3; the client picks, ssl_prefer_server_ciphers off) and sends HSTS; the HTTP port redirects
 * to the configured server name, never to the Host header a client sent.
 */
import { publicKeyFileNames } from '../lambda-free-tools/src/sign/keys';

/** What the vhost needs; every path is a real path on the server. */
export interface VhostSpec {
  channel: string;
  serverName: string;
  webRoot: string;
  /** The channel's public key files are `<keyName>-archive-keyring.asc|.gpg` in the web root. */
  keyName: string;
  /** CIDR blocks or addresses allowed (already validated and normalised). */
  allowedCidrs: string[];
  /** htpasswd file; undefined: no basic auth. */
  htpasswdFile?: string;
  /** Certificate chain and key (PEM); undefined: no HTTPS server. */
  tls?: { certificate: string; key: string };
  /** Directory served at /.well-known/acme-challenge/ on the HTTP port (certbot --webroot). */
  acmeRoot?: string;
  /** Serve the repository over plain HTTP too (else the HTTP port only redirects to HTTPS). */
  allowPlainHttp: boolean;
  httpPort: number;
  httpsPort: number;
  /** Listen on this address only; undefined: every IPv4 and IPv6 address. */
  listenAddress?: string;
  /** Directory of the access and error logs. */
  logDir: string;
}

function listen(port: number, address: string | undefined, ssl: boolean): string[] {
  const flags = ssl ? ' ssl' : '';
  if (address) return [`listen ${address.includes(':') ? `[${address}]` : address}:${port}${flags};`];
  return [`listen ${port}${flags};`, `listen [::]:${port}${flags};`];
}

/**
 * TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AES-GCM or ChaCha20-Poly1305 (AEAD)
 * only; no static RSA, no CBC, no DHE (Mozilla Server Side TLS, "intermediate", version 5.7).
 * TLS 1.3 suites are all AEAD and not set by ssl_ciphers.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

/** max-age of the Strict-Transport-Security header: two years (RFC 6797 section 6.1.1). */
export const HSTS_MAX_AGE = 63072000;

/** Directives every server block carries, whatever the host's nginx.conf says. */
function hardening(): string[] {
  return [
    'server_tokens off;',
    '# A symbolic link is served only when it and its target have the same owner (the dists flip).',
    'disable_symlinks if_not_owner from=$document_root;',
  ];
}

/** The allowlist: the listed addresses, then everyone else refused (403). */
function allowlist(v: VhostSpec): string[] {
  return [...v.allowedCidrs.map((c) => `allow ${c};`), 'deny all;'];
}

/**
 * An exact-match location for one public key file: basic auth off, the allowlist repeated (not
 * only inherited) so the location says by itself who may read it.
 */
function keyLocation(v: VhostSpec, ext: 'asc' | 'gpg', type: string): string[] {
  return [
    `location = /${publicKeyFileNames(v.keyName)[ext]} {`,
    ...[`default_type ${type};`, ...allowlist(v), 'auth_basic off;'].map((l) => `    ${l}`),
    '}',
  ];
}

function repositoryBody(v: VhostSpec): string[] {
  const lines = [`root ${v.webRoot};`, 'autoindex off;', ...allowlist(v)];
  if (v.htpasswdFile) lines.push(`auth_basic "APT ${v.channel}";`, `auth_basic_user_file ${v.htpasswdFile};`);
  lines.push(
    '',
    '# Dotfiles (.generations, editor leftovers) are never served, whatever the location.',
    'location ~ /\\. {',
    '    deny all;',
    '}',
    '',
    '# The indexes and the pool: what apt fetches, browsable by operators.',
    'location /dists/ {',
    '    autoindex on;',
    '    location ~ /\\. { deny all; }',
    '}',
    'location /pool/ {',
    '    autoindex on;',
    '    location ~ /\\. { deny all; }',
    '}',
    '# The web catalogue, rewritten by every publish (a symlink flipped like dists): for people.',
    'location /catalogue/ {',
    '    index index.html;',
    '    location ~ /\\. { deny all; }',
    '}',
    '',
    '# The public key, armored and binary (apt Signed-By takes either, chosen by extension):',
    '# without credentials, so provisioning fetches it before it has any; still the allowlist only.',
    ...keyLocation(v, 'asc', 'text/plain'),
    ...keyLocation(v, 'gpg', 'application/octet-stream'),
    '',
    '# Everything else.',
    'location / {',
    '    deny all;',
    '}',
  );
  return lines;
}

function acmeLocation(acmeRoot: string): string[] {
  return [
    '# certbot --webroot answers its challenge here, from any address and without auth.',
    'location ^~ /.well-known/acme-challenge/ {',
    `    root ${acmeRoot};`,
    '    allow all;',
    '    auth_basic off;',
    '    default_type text/plain;',
    '}',
  ];
}

function server(lines: string[]): string {
  return ['server {', ...lines.map((l) => (l ? `    ${l}` : '')), '}'].join('\n');
}

/**
 * Renders the vhost file (one or two `server` blocks) for `v`.
 * - HTTPS (when `tls`): the repository, TLS 1.2 (ECDHE + AEAD suites) and 1.3, HSTS.
 * - HTTP: the repository too when `allowPlainHttp`, else a redirect to `https://<serverName>`; the
 *   ACME challenge location when `acmeRoot` is set.
 * Both carry server_tokens off and disable_symlinks if_not_owner. Wherever the repository is
 * served, `/<keyName>-archive-keyring.asc|.gpg` are served to allowed addresses without basic auth.
 * Throws Error when neither HTTPS nor plain HTTP would serve the repository.
 */
export function renderVhost(v: VhostSpec): string {
  if (!v.tls && !v.allowPlainHttp)
    throw new Error(`vhost ${v.serverName}: no TLS and plain HTTP not allowed: nothing would serve the repository`);
  const log = (kind: string) => `${kind}_log ${v.logDir}/apt-${v.channel}.${kind === 'access' ? 'access' : 'error'}.log;`;
  const blocks: string[] = [];
  const http: string[] = [
    ...listen(v.httpPort, v.listenAddress, false),
    `server_name ${v.serverName};`,
    log('access'),
    log('error'),
    ...hardening(),
    '',
  ];
  if (v.acmeRoot) http.push(...acmeLocation(v.acmeRoot), '');
  if (v.allowPlainHttp) http.push(...repositoryBody(v));
  // The configured name, not $host: a client's Host header never chooses where it is sent.
  else http.push('location / {', `    return 301 https://${v.serverName}${v.httpsPort === 443 ? '' : `:${v.httpsPort}`}$request_uri;`, '}');
  blocks.push(server(http));
  if (v.tls) {
    blocks.push(
      server([
        ...listen(v.httpsPort, v.listenAddress, true),
        `server_name ${v.serverName};`,
        log('access'),
        log('error'),
        ...hardening(),
        `ssl_certificate ${v.tls.certificate};`,
        `ssl_certificate_key ${v.tls.key};`,
        'ssl_protocols TLSv1.2 TLSv1.3;',
        `ssl_ciphers ${TLS12_CIPHERS.join(':')};`,
        'ssl_prefer_server_ciphers off;',
        // Tickets would reuse one key for every session until nginx restarts (no forward secrecy).
        'ssl_session_tickets off;',
        `add_header Strict-Transport-Security "max-age=${HSTS_MAX_AGE}" always;`,
        '',
        ...repositoryBody(v),
      ]),
    );
  }
  return `# Managed by the apt-repo Pulumi stack (channel ${v.channel}): local changes are overwritten.\n${blocks.join('\n\n')}\n`;
}

/**
 * Renders the vhost that serves only certbot's ACME challenge on the HTTP port, used while no
 * certificate exists yet (the full vhost cannot load without one). Every other path is denied, so
 * the repository, and basic-auth credentials, never go over plain HTTP unless `allowPlainHttp`
 * says so in the full vhost.
 */
export function renderAcmeBootstrapVhost(
  v: Pick<VhostSpec, 'channel' | 'serverName' | 'httpPort' | 'listenAddress' | 'logDir'> & { acmeRoot: string },
): string {
  const lines = [
    ...listen(v.httpPort, v.listenAddress, false),
    `server_name ${v.serverName};`,
    `access_log ${v.logDir}/apt-${v.channel}.access.log;`,
    `error_log ${v.logDir}/apt-${v.channel}.error.log;`,
    ...hardening(),
    '',
    ...acmeLocation(v.acmeRoot),
    '',
    'location / {',
    '    deny all;',
    '}',
  ];
  return `# Managed by the apt-repo Pulumi stack (channel ${v.channel}): ACME bootstrap until the certificate exists.\n${server(lines)}\n`;
}

/**
 * A minimal nginx.conf that includes only `vhostFile`, with pid, temp and log paths under `tmpDir`,
 * so `nginx -t -c <file> -p <tmpDir> -e <tmpDir>/error.log` checks the vhost (syntax, certificate
 * and key loading) without the host's other sites and without binding ports.
 */
export function renderNginxTestConf(vhostFile: string, tmpDir: string): string {
  return [
    `pid ${tmpDir}/nginx.pid;`,
    `error_log ${tmpDir}/error.log;`,
    'events {}',
    'http {',
    `    access_log ${tmpDir}/access.log;`,
    `    client_body_temp_path ${tmpDir}/body;`,
    `    proxy_temp_path ${tmpDir}/proxy;`,
    `    fastcgi_temp_path ${tmpDir}/fastcgi;`,
    `    uwsgi_temp_path ${tmpDir}/uwsgi;`,
    `    scgi_temp_path ${tmpDir}/scgi;`,
    `    include ${vhostFile};`,
    '}',
    '',
  ].join('\n');
}
