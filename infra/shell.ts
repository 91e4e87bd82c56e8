/**
 * Building blocks of the bash scripts that the plan's steps run on the server (bash(1), POSIX
 * shell quoting). Every script starts with SCRIPT_PRELUDE, which defines idempotent helpers: a
 * file is installed only when its content, mode or owner differ, a directory is created or fixed
 * only when needed, and each actual change sets a flag so the script prints `CHANGED` at the end.
 */

import { shellQuote } from '../lambda-free-tools/src/shellQuote';

/**
 * Single-quotes `s` for bash, safe words too (lambda-free-tools/src/shellQuote.ts with `always`):
 * the scripts' text is a resource input and must not change with the quoting style.
 * @throws UsageError if `s` contains a NUL byte.
 */
export function shq(s: string): string {
  return shellQuote(s, { always: true });
}

/**
 * Helpers every step script starts with (bash). Arguments are always quoted by the caller; paths
 * are absolute.
 *
 * The scripts run as root over folders that other users can write (the drop folders, the web root
 * of the service user), so no helper follows a link it did not create, and none checks a path and
 * then uses it again by name (another user could swap it in between with rename(2), e.g.
 * renameat2 RENAME_EXCHANGE): every change is made to the current directory (an inode that cannot
 * be swapped), found by `enter_dir`, or inside a private folder and then renamed into place.
 * - `enter_dir PATH CREATE`: makes PATH the current directory, one component at a time from `/`
 *   (creating missing ones when CREATE is 1). A symbolic link is followed only while every folder
 *   above it can be changed by root (or the script's user) alone and the link belongs to root: a
 *   link root made (/srv/apt on a data disk) is fine. Past the first folder another user can write
 *   (owner not root, or group/other-writable without the sticky bit protecting root's entry), a
 *   link is refused, and after each step the real current directory (getcwd(3), coreutils
 *   `pwd -P`; bash's own `pwd -P` re-reads the path) must be the expected one: a swap at any
 *   moment ends the script (exit 1, naming the path). Sets APT_REPO_HERE to the canonical path.
 * - `ensure_dir PATH MODE OWNER GROUP`: enter_dir PATH 1, then chown/chmod `.` only when mode or
 *   owner differ (mode with a leading 0 so that chmod also clears set-group-ID on a directory,
 *   coreutils "Directory Setuid and Setgid").
 * - `install_file SRC DEST MODE OWNER GROUP`: when content, mode or owner differ, copies SRC into
 *   a private folder (mktemp -d, 0700) made inside DEST's folder, gives it mode and owner there,
 *   and renames it over DEST (rename(2) replaces the last component, never follows it; same file
 *   system by construction, so GNU mv never falls back to copying); sets FILE_CHANGED to 1 when it
 *   did, 0 otherwise. DEST's folder must exist.
 * - `read_secret DEST`: reads one base64 line from stdin into DEST (mode 0600), the way secret
 *   files reach a step (never through the command text).
 * - `mark_changed`, and `finish`, which prints `CHANGED` when anything changed.
 * ensure_dir and install_file leave the current directory at `/`.
 */
export const SCRIPT_PRELUDE = `set -eu
umask 022
export LC_ALL=C
APT_REPO_CHANGED=0
APT_REPO_UID=$(id -u)
mark_changed() { APT_REPO_CHANGED=1; }
finish() { if [ "$APT_REPO_CHANGED" = 1 ]; then echo CHANGED; fi; }
want_meta() { printf '%o %s %s' "0$1" "$2" "$3"; }
apt_repo_refuse() { echo "apt-repo: $1" >&2; exit 1; }
# True when only root (or this script's user) can replace the entry $1 of the current directory.
entry_fixed() {
  local m
  m=$(stat -c '%u %a' -- . "$1" 2>/dev/null) || return 1
  set -- $m
  case $1 in 0|"$APT_REPO_UID") ;; *) return 1 ;; esac
  if [ $((8#$2 & 8#022)) = 0 ]; then return 0; fi
  # Sticky (/tmp): others may add entries but never rename or remove one they do not own.
  if [ $((8#$2 & 8#1000)) = 0 ]; then return 1; fi
  case $3 in 0|"$APT_REPO_UID") return 0 ;; *) return 1 ;; esac
}
enter_dir() {
  local want=$1 create=$2 comp here=/ next fixed=1 link
  local -a parts
  case $want in /*) ;; *) apt_repo_refuse "$want is not an absolute path" ;; esac
  case $want in *$'\\n'*) apt_repo_refuse "a path holding a line break is refused" ;; esac
  IFS=/ read -r -a parts <<<"$want"
  cd /
  for comp in "\${parts[@]}"; do
    case $comp in '' | .) continue ;; ..) apt_repo_refuse "$want: '..' is not allowed" ;; esac
    if [ ! -e "$comp" ] && [ ! -L "$comp" ]; then
      if [ "$create" != 1 ]; then apt_repo_refuse "$want: \${here%/}/$comp does not exist"; fi
      # mkdir never follows a link; losing a race to another creator is checked below.
      if mkdir -- "$comp" 2>/dev/null; then mark_changed; fi
    fi
    if [ "$fixed" = 1 ] && ! entry_fixed "$comp"; then fixed=0; fi
    link=0
    if [ -L "$comp" ]; then
      link=1
      if [ "$fixed" = 0 ]; then apt_repo_refuse "$want: \${here%/}/$comp is a symbolic link in a folder another user can write: not following it"; fi
      case $(stat -c %u -- "$comp") in 0|"$APT_REPO_UID") ;; *) apt_repo_refuse "$want: \${here%/}/$comp is a symbolic link owned by another user than root: not following it" ;; esac
    fi
    cd -P -- "$comp" 2>/dev/null || apt_repo_refuse "$want: \${here%/}/$comp is not a directory"
    # Where nobody else can change anything, a plain folder is where its name says.
    if [ "$fixed" = 1 ] && [ "$link" = 0 ]; then here=\${here%/}/$comp; continue; fi
    next=$(/bin/pwd -P)
    if [ "$fixed" = 0 ] && [ "$next" != "\${here%/}/$comp" ]; then
      apt_repo_refuse "$want: \${here%/}/$comp was replaced while in use (reached $next): not changing it"
    fi
    here=$next
  done
  APT_REPO_HERE=$here
}
ensure_dir() {
  case $2 in [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;; *) apt_repo_refuse "$1: mode '$2' is not octal" ;; esac
  enter_dir "$1" 1
  if [ "$(stat -c '%a %U %G' .)" != "$(want_meta "$2" "$3" "$4")" ]; then
    chown -h -- "$3:$4" .
    chmod -- "0$2" .
    mark_changed
  fi
  cd /
}
install_file() {
  FILE_CHANGED=0
  local src=$1 name=\${2##*/} stage
  case $src in /*) ;; *) src=$PWD/$src ;; esac
  case $name in '' | . | ..) apt_repo_refuse "$2 is not a file path" ;; esac
  case $3 in [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;; *) apt_repo_refuse "$2: mode '$3' is not octal" ;; esac
  enter_dir "\${2%/*}/" 0
  if [ -f "$name" ] && [ ! -L "$name" ] && [ "$(stat -c '%a %U %G' -- "$name")" = "$(want_meta "$3" "$4" "$5")" ] && cmp -s -- "$src" "$name"; then
    cd /
    return 0
  fi
  stage=$(mktemp -d ./.apt-repo-stage.XXXXXX)
  cd -P -- "$stage"
  case "$(/bin/pwd -P) $(stat -c '%u %a' .)" in
    "\${APT_REPO_HERE%/}/\${stage#./} $APT_REPO_UID 700" | "\${APT_REPO_HERE%/}/\${stage#./} $APT_REPO_UID 2700") ;;
    *) apt_repo_refuse "$2: the staging folder $stage was replaced while in use: not installing" ;;
  esac
  (umask 077 && cat -- "$src" >new)
  chown -h -- "$4:$5" new
  chmod -- "0$3" new
  # Relative to the private folder: its parent cannot change (moving a folder to another parent
  # needs write access to the folder itself, which only root has).
  mv -f -T -- new "../$name"
  cd -P ..
  rmdir -- "$stage" 2>/dev/null || true
  cd /
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
