/**
 * Building blocks of the bash scripts that the plan's steps run on the server (bash(1), POSIX
 * shell quoting). Every script starts with SCRIPT_PRELUDE, which defines idempotent helpers: a
 * file is installed only when its content, mode or owner differ, a directory is created or fixed
 * only when needed, and each actual change sets a flag so the script prints `CHANGED` at the end.
 */

/** Single-quotes `s` for bash: safe for any byte except NUL. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Helpers every step script starts with (bash). Arguments are always quoted by the caller.
 * - `ensure_dir PATH MODE OWNER GROUP`: mkdir -p, then chmod/chown only when they differ; fails
 *   when PATH is a symbolic link not owned by root (chown/chmod would change its target).
 * - `install_file SRC DEST MODE OWNER GROUP`: copies SRC over DEST (atomically, by rename) only
 *   when content, mode or owner differ; sets FILE_CHANGED to 1 when it did, 0 otherwise.
 * - `read_secret DEST`: reads one base64 line from stdin into DEST (mode 0600), the way secret
 *   files reach a step (never through the command text).
 * - `mark_changed`, and `finish`, which prints `CHANGED` when anything changed.
 */
export const SCRIPT_PRELUDE = `set -eu
umask 022
export LC_ALL=C
APT_REPO_CHANGED=0
mark_changed() { APT_REPO_CHANGED=1; }
finish() { if [ "$APT_REPO_CHANGED" = 1 ]; then echo CHANGED; fi; }
want_meta() { printf '%o %s %s' "0$1" "$2" "$3"; }
ensure_dir() {
  # chown/chmod follow a symlink: one planted by another user in a group-writable folder (incoming)
  # would hand its target to the service user. A link root made (/srv/apt on a data disk) is fine.
  if [ -L "$1" ] && [ "$(stat -c %u "$1")" != 0 ]; then echo "apt-repo: $1 is a symbolic link owned by another user than root" >&2; exit 1; fi
  if [ ! -d "$1" ]; then mkdir -p "$1"; mark_changed; fi
  if [ "$(stat -c '%a %U %G' "$1")" != "$(want_meta "$2" "$3" "$4")" ]; then
    chown "$3:$4" "$1"; chmod "$2" "$1"; mark_changed
  fi
}
install_file() {
  FILE_CHANGED=0
  if [ -f "$2" ] && [ ! -L "$2" ] && cmp -s "$1" "$2" && [ "$(stat -c '%a %U %G' "$2")" = "$(want_meta "$3" "$4" "$5")" ]; then
    return 0
  fi
  install -m "$3" -o "$4" -g "$5" "$1" "$2.apt-repo-new"
  mv -f "$2.apt-repo-new" "$2"
  FILE_CHANGED=1
  mark_changed
}
APT_REPO_TMP=$(mktemp -d)
trap 'rm -rf "$APT_REPO_TMP"' EXIT
read_secret() {
  IFS= read -r line || { echo "apt-repo: expected a secret for $1 on stdin" >&2; exit 1; }
  (umask 077; printf '%s' "$line" | base64 -d > "$1")
}
`;

/**
 * Wraps a step body as the command text a remote.Command runs: `bash -c '<prelude + body + finish>'`,
 * through `sudo -n` when the SSH user is not root (no PTY: sudo must be NOPASSWD). The login shell
 * of the SSH user only sees one quoted word, so the body may use bash freely.
 */
export function wrapScript(body: string, sshUser: string): string {
  const text = `${SCRIPT_PRELUDE}${body.trimEnd()}\nfinish\n`;
  return `${sshUser === 'root' ? '' : 'sudo -n '}bash -c ${shq(text)}`;
}
