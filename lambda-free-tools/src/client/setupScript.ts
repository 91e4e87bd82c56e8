/**
 * The client setup script of a channel: one POSIX sh script (runs under dash, `set -eu`) that a
 * client server's provisioning runs as root to use the channel with apt >= 1.8. It is rendered here
 * once, and reaches clients two ways: `apt-repo client-setup` (cli/commands/clientSetup.ts) and the
 * stack output `clientSetupScript` (infra/channel.ts). It holds no secret: credentials come from the
 * environment of the run, never from the script's text nor its arguments (visible in ps).
 *
 * What a run writes (`$APT_REPO_ROOT` prefixes every path, default empty):
 * - `/usr/share/keyrings/<keyName>-archive-keyring.asc`, 0644 root:root: the public key, armored,
 *   embedded in the script. Armored rather than binary: the script stays text a reader can check
 *   (`gpg --show-keys`), the armor's own framing and CRC make a truncated copy fail in gpgv instead
 *   of being decoded into a wrong key, and no decoding tool is needed; apt's Signed-By picks the
 *   format by the extension and reads `.asc` since apt 1.4. World-readable: apt's gpgv method runs as
 *   the `_apt` sandbox user (DESIGN.md, APT client facts).
 * - `/etc/apt/sources.list.d/<keyName>.sources`, 0644 root:root: one deb822 stanza (sources.list(5),
 *   "DEB822-STYLE FORMAT"): `Types: deb`, `URIs: <url>`, `Suites: <codename>`, `Components:
 *   <component>`, `Signed-By: <keyring path>`.
 * - `/etc/apt/auth.conf.d/<keyName>.conf`, 0600 root:root, only when APT_REPO_USERNAME is set (with
 *   APT_REPO_PASSWORD, or APT_REPO_PASSWORD_FILE naming a file whose first line is the password):
 *   `machine <host>[:port] login <user> password <password>` (apt_auth.conf(5); the machine has no
 *   scheme for https, so apt >= 1.9.5 sends it over https only, and `http://` for plain http, see
 *   authMachine). Mode 0600 owned by root is enough for apt's `_apt` sandbox: the http and https
 *   methods open Dir::Etc::netrc and every Dir::Etc::netrcparts file while still root, before
 *   DropPrivsOrDie (apt's methods/aptmethod.h, aptAuthConfMethod::Configuration), so the file never
 *   needs to be readable by `_apt` (checked by a real apt-get run as root with the sandbox on, in
 *   lambda-free-tools/test/client-setup.e2e.test.ts). The secret is written by shell builtins only
 *   (printf), so it never appears in another process's argv.
 *
 * The codename is the script's one argument, else the one the renderer was given (`--codename`),
 * else VERSION_CODENAME of `$APT_REPO_ROOT/etc/os-release`; one the channel does not serve is
 * refused (exit 2). Each file is written to a temp file beside it and renamed over (atomic); a file
 * that already has the same content, mode and owner is left alone, so a second run changes nothing.
 * With APT_REPO_ROOT set (an absolute path: tests, or a tree an apt is pointed at with Dir::Etc::*),
 * Signed-By names the keyring under that root too; for a chroot, run the script inside it instead.
 */
import { ConfigError, UsageError } from '../errors';
import { shellQuote } from '../shellQuote';
import { publicKeyFileNames } from '../sign/keys';

/** What the script installs: the channel as its clients reach it. */
export interface ClientSetupSpec {
  /** The channel's name, for the header only. */
  channel: string;
  /** Base URL clients use, http(s), ending with '/': https://apt-prod.epiconcept.fr/ */
  url: string;
  /** Key and file names: `<keyName>-archive-keyring.asc`, `<keyName>.sources`, `<keyName>.conf`. */
  keyName: string;
  /** Codenames the channel serves (liste_dist), in order; the script refuses any other. */
  codenames: string[];
  /** The component of every stanza ('main'). */
  component: string;
  /** The channel's public key, armored (`-----BEGIN PGP PUBLIC KEY BLOCK-----` … `END …`). */
  publicKeyArmored: string;
  /** The codename used when the script gets no argument, instead of /etc/os-release's. */
  defaultCodename?: string;
}

const CODENAME_RE = /^[a-z][a-z0-9-]*$/;
const KEY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const COMPONENT_RE = /^[a-z0-9][a-z0-9.+-]*$/;
const KEY_DELIMITER = 'APT_REPO_PUBLIC_KEY';

/**
 * The `machine` token of an auth.conf entry for the channel at `url` (apt_auth.conf(5)):
 * `host[:port]` for https (apt >= 1.9.5 then matches it for https only; older apt for any scheme),
 * `http://host[:port]` for plain http (without the scheme apt >= 1.9.5 would never send it over http).
 */
export function authMachine(url: string): string {
  const u = new URL(url);
  return `${u.protocol === 'http:' ? 'http://' : ''}${u.host}`;
}

/**
 * Checks a channel URL as clients use it: http or https, no credentials, query or fragment, ending
 * with '/'. Returns it normalised (the WHATWG form: lower-case host, default port dropped).
 * @param what names the setting in the message (`--url`, `repo.yaml:url`).
 * @throws UsageError for anything else.
 */
export function checkChannelUrl(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`${what} '${url}' is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UsageError(`${what} '${url}' is not an http or https URL`);
  if (u.username || u.password) throw new UsageError(`${what} '${url}' carries credentials: clients get them from auth.conf.d`);
  if (u.search || u.hash) throw new UsageError(`${what} '${url}' has a query or a fragment`);
  if (!u.pathname.endsWith('/')) throw new UsageError(`${what} '${url}' must end with '/' (the folder holding dists/ and pool/)`);
  return u.href;
}

function checkSpec(s: ClientSetupSpec): void {
  if (!KEY_NAME_RE.test(s.keyName)) throw new ConfigError('keyName', `'${s.keyName}' is not a file-name word`);
  if (!COMPONENT_RE.test(s.component)) throw new ConfigError('component', `'${s.component}' is not a component name`);
  if (s.codenames.length === 0) throw new ConfigError('codenames', 'none: the script would refuse every client');
  for (const c of s.codenames) if (!CODENAME_RE.test(c)) throw new ConfigError(`codenames:${c}`, 'not a codename');
  if (s.defaultCodename !== undefined && !s.codenames.includes(s.defaultCodename))
    throw new UsageError(`codename '${s.defaultCodename}' is not served by channel ${s.channel} (it serves: ${s.codenames.join(', ')})`);
  const key = s.publicKeyArmored.trim();
  if (!key.startsWith('-----BEGIN PGP PUBLIC KEY BLOCK-----') || !key.endsWith('-----END PGP PUBLIC KEY BLOCK-----'))
    throw new ConfigError('public key', 'not an armored OpenPGP public key block');
  if (key.split('\n').some((l) => l.trim() === KEY_DELIMITER) || key.includes('\0'))
    throw new ConfigError('public key', 'holds a line the script cannot embed');
}

/**
 * Renders the setup script of one channel (see the module comment for what it does).
 * @throws UsageError for a bad URL or a default codename the channel does not serve; ConfigError
 * for a bad key name, component, codename list or public key.
 */
export function renderClientSetupScript(spec: ClientSetupSpec): string {
  const url = checkChannelUrl(spec.url, 'url');
  checkSpec(spec);
  const keyFile = publicKeyFileNames(spec.keyName).asc;
  const q = (s: string) => shellQuote(s, { always: true });
  const key = spec.publicKeyArmored.trim();
  return `#!/bin/sh
# Client setup of the APT channel ${spec.channel} at ${url}
# Rendered by apt-repo (\`apt-repo client-setup\`, or the stack output clientSetupScript). No secret inside.
#
# For apt >= 1.8 (Debian buster, Ubuntu focal and later). Run as root:
#   APT_REPO_USERNAME=web1 APT_REPO_PASSWORD_FILE=/root/apt.pw sh client-setup.sh [CODENAME]
# It writes, atomically, and leaves alone what is already right (a second run changes nothing):
#   /usr/share/keyrings/${keyFile}      0644  the channel's public key (Signed-By)
#   /etc/apt/sources.list.d/${spec.keyName}.sources   0644  Types/URIs/Suites/Components/Signed-By
#   /etc/apt/auth.conf.d/${spec.keyName}.conf        0600 root  machine/login/password (only with APT_REPO_USERNAME)
# CODENAME: one of: ${spec.codenames.join(' ')}. Default: ${spec.defaultCodename ? `${spec.defaultCodename}` : 'VERSION_CODENAME of /etc/os-release'}.
# Credentials come from the environment, never from the arguments (ps shows those to every user):
#   APT_REPO_USERNAME, and APT_REPO_PASSWORD or APT_REPO_PASSWORD_FILE (its first line).
#   Without APT_REPO_USERNAME no auth.conf.d entry is written (an existing one is kept).
# APT_REPO_ROOT=/some/dir writes under that folder instead of / (tests; Signed-By names the key there too).
# apt reads auth.conf.d as root before it drops to its _apt sandbox user: 0600 root is enough.
#
# Older apt, by hand (apt reads auth.conf.d since 1.8):
#   stretch (apt 1.4): the machine/login/password line in /etc/apt/auth.conf, 0600 root; or, as on
#   jessie (apt 1.0), credentials in the URL of a sources.list line, that file 0600 root:
#     deb [signed-by=/usr/share/keyrings/${publicKeyFileNames(spec.keyName).gpg}] ${url.replace('://', '://USER:PASSWORD@')} CODENAME ${spec.component}
#   with the binary key ${publicKeyFileNames(spec.keyName).gpg} (served beside the .asc; apt before
#   1.4 reads no .asc). apt before 1.1 ignores signed-by: add the key with apt-key there.
# A 401 or 403 (wrong or missing credentials, address not allowed) makes apt say the repository
# "is not signed" or that InRelease could not be fetched: check the credentials first.
set -eu
umask 022

URL=${q(url)}
KEY_NAME=${q(spec.keyName)}
KEY_FILE=${q(keyFile)}
COMPONENT=${q(spec.component)}
CODENAMES=${q(spec.codenames.join(' '))}
DEFAULT_CODENAME=${q(spec.defaultCodename ?? '')}
AUTH_MACHINE=${q(authMachine(url))}
ROOT=\${APT_REPO_ROOT:-}

say() { printf 'apt-repo client setup: %s\\n' "$*"; }
die() { printf 'apt-repo client setup: %s\\n' "$*" >&2; exit 1; }
usage() { printf 'apt-repo client setup: %s\\nusage: sh %s [CODENAME]  (one of: %s)\\n' "$*" "$0" "$CODENAMES" >&2; exit 2; }

tmp=''
trap 'if [ -n "$tmp" ]; then rm -f "$tmp"; fi' EXIT
trap 'exit 1' HUP INT TERM

case $# in
  0) codename=$DEFAULT_CODENAME ;;
  1) codename=$1 ;;
  *) usage 'at most one argument, the codename' ;;
esac
case $ROOT in
  '') [ "$(id -u)" -eq 0 ] || die 'run as root (or set APT_REPO_ROOT to write under another folder)' ;;
  /*) ;;
  *) usage "APT_REPO_ROOT must be an absolute path, not '$ROOT'" ;;
esac
if [ -z "$codename" ]; then
  for f in "$ROOT/etc/os-release" "$ROOT/usr/lib/os-release"; do
    if [ -r "$f" ]; then
      codename=$(sed -n 's/^VERSION_CODENAME=//p' "$f" | tr -d '"'"'" | head -n 1)
      break
    fi
  done
  [ -n "$codename" ] || usage 'no CODENAME given and no VERSION_CODENAME in /etc/os-release'
fi
case $codename in
  *[!a-z0-9-]*) usage "'$codename' is not a codename" ;;
esac
case " $CODENAMES " in
  *" $codename "*) ;;
  *) usage "this repository serves no '$codename'" ;;
esac

user=\${APT_REPO_USERNAME:-}
pass=\${APT_REPO_PASSWORD:-}
if [ -n "\${APT_REPO_PASSWORD_FILE:-}" ]; then
  [ -z "$pass" ] || usage 'set APT_REPO_PASSWORD or APT_REPO_PASSWORD_FILE, not both'
  [ -r "$APT_REPO_PASSWORD_FILE" ] || die "cannot read APT_REPO_PASSWORD_FILE ($APT_REPO_PASSWORD_FILE)"
  IFS= read -r pass <"$APT_REPO_PASSWORD_FILE" || :
  [ -n "$pass" ] || die "APT_REPO_PASSWORD_FILE ($APT_REPO_PASSWORD_FILE) has an empty first line"
fi
if [ -n "$user" ] && [ -z "$pass" ]; then usage 'APT_REPO_USERNAME is set: set APT_REPO_PASSWORD or APT_REPO_PASSWORD_FILE too'; fi
if [ -z "$user" ] && [ -n "$pass" ]; then usage 'a password without APT_REPO_USERNAME'; fi
# auth.conf tokens are separated by white space: none can hold any.
case "$user$pass" in
  *[[:space:]]*) usage 'the user name and the password cannot contain white space (apt_auth.conf(5) tokens)' ;;
esac

# install_tmp TARGET MODE: puts $tmp (already filled) at TARGET with MODE, owner root when run as
# root, by a rename; leaves TARGET alone when it already has that content, mode and owner.
install_tmp() {
  chmod "$2" "$tmp"
  if [ "$(id -u)" -eq 0 ]; then chown 0:0 "$tmp"; fi
  if [ -f "$1" ] && [ ! -L "$1" ] && cmp -s "$tmp" "$1" &&
    [ "$(stat -c '%a %u %g' "$1")" = "$(stat -c '%a %u %g' "$tmp")" ]; then
    rm -f "$tmp"
    say "unchanged $1"
  else
    mv -f "$tmp" "$1"
    say "wrote $1"
  fi
  tmp=''
}

keyring_dir=$ROOT/usr/share/keyrings
sources_dir=$ROOT/etc/apt/sources.list.d
auth_dir=$ROOT/etc/apt/auth.conf.d
mkdir -p "$keyring_dir" "$sources_dir"
keyring=$keyring_dir/$KEY_FILE

tmp=$(mktemp "$keyring_dir/.$KEY_FILE.XXXXXX")
cat >"$tmp" <<'${KEY_DELIMITER}'
${key}
${KEY_DELIMITER}
install_tmp "$keyring" 0644

tmp=$(mktemp "$sources_dir/.$KEY_NAME.sources.XXXXXX")
printf 'Types: deb\\nURIs: %s\\nSuites: %s\\nComponents: %s\\nSigned-By: %s\\n' "$URL" "$codename" "$COMPONENT" "$keyring" >"$tmp"
install_tmp "$sources_dir/$KEY_NAME.sources" 0644

if [ -n "$user" ]; then
  mkdir -p "$auth_dir"
  # mktemp makes the file 0600 before the secret is written; printf is a builtin (no argv to see).
  tmp=$(mktemp "$auth_dir/.$KEY_NAME.conf.XXXXXX")
  printf 'machine %s login %s password %s\\n' "$AUTH_MACHINE" "$user" "$pass" >"$tmp"
  install_tmp "$auth_dir/$KEY_NAME.conf" 0600
else
  say "no APT_REPO_USERNAME: $auth_dir/$KEY_NAME.conf not written (the server answers 401 without credentials)"
fi

for f in "$sources_dir"/*.list; do
  if [ -f "$f" ] && grep -qF "$URL" "$f"; then say "warning: $f lists $URL too: remove it (apt would warn of a source configured twice)"; fi
done
say "done: run apt-get update"
`;
}
