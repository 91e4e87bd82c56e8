/**
 * The record of the secret files' digests (`<configDir>/secret-digests`, root only), kept by the
 * steps that install a secret (signing-key, htpasswd, tls) for `apt-repo doctor` run as root.
 */
import { shq } from '../shell';

/**
 * Shell lines that record the SHA-256 of the secret file `dest` just installed in `record`
 * (`<configDir>/secret-digests`, 0600 root, one `<sha256>  <path>` line per secret file), for
 * `apt-repo doctor` run as root: the manifest never holds a digest of a secret.
 */
export function recordSecretDigest(record: string, dest: string): string {
  return [
    `d=$(sha256sum < ${shq(dest)} | cut -d' ' -f1)`,
    `if ! grep -qxF -- "$d  "${shq(dest)} ${shq(record)} 2>/dev/null; then`,
    `  { awk -v p=${shq(dest)} '{ l = $0; sub(/^[0-9a-f]+  /, "", l); if (l != p) print }' ${shq(record)} 2>/dev/null || true; printf '%s  %s\\n' "$d" ${shq(dest)}; } > "$APT_REPO_TMP/secret-digests"`,
    `  install_file "$APT_REPO_TMP/secret-digests" ${shq(record)} 0600 root root`,
    'fi',
  ].join('\n');
}
