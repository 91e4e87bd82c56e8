#!/usr/bin/env bash
# Makes sure the Debian tools the tests and the local stack drive for real are installed:
# installs the missing ones with apt-get when run as root, otherwise names them and fails.
set -euo pipefail

# command -> Debian package
declare -A need=(
  [nginx]=nginx [sshd]=openssh-server [ssh-keygen]=openssh-client [dpkg-scanpackages]=dpkg-dev
  [apt-ftparchive]=apt-utils [gpgv]=gpgv [gpg]=gnupg [xz]=xz-utils [zstd]=zstd [openssl]=openssl
  [sudo]=sudo [visudo]=sudo [systemd-analyze]=systemd [perl]=perl-base
)
missing=()
for cmd in "${!need[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (install them: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
