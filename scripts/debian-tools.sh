#!/usr/bin/env bash
# The one list of the Debian packages the tests, the local stack and CI drive for real.
#   debian-tools.sh              makes sure the test tools are installed (npm's pretest): installs the
#                                missing ones with apt-get when run as root, otherwise names them and fails
#   debian-tools.sh --list       prints the test tools' packages, one a line
#   debian-tools.sh --list --ci  the same plus what only CI installs (.ci/run reads this list)
set -euo pipefail

# command -> Debian package: nginx, sshd, dpkg-dev (dpkg-scanpackages, dpkg-deb), apt-utils
# (apt-ftparchive), gpgv/gnupg, xz/zstd are the real peers the tests compare against or serve
# through; openssl makes test TLS certificates; sudo is the operators' and tests' narrow path to the
# indexer user (visudo checks the rule); systemd-analyze rates the hardening of every rendered unit
# offline; perl drives the rename race of the shell helpers' test; chromium (headless, driven by
# playwright-core) reads the web catalogue as people do; curl is the mirrors' plain client; script
# (bsdutils) gives a command a terminal, where progress bars draw.
declare -A need=(
  [chromium]=chromium [nginx]=nginx [sshd]=openssh-server [ssh-keygen]=openssh-client [dpkg-scanpackages]=dpkg-dev
  [apt-ftparchive]=apt-utils [gpgv]=gpgv [gpg]=gnupg [xz]=xz-utils [zstd]=zstd [openssl]=openssl
  [sudo]=sudo [visudo]=sudo [systemd-analyze]=systemd [perl]=perl-base [curl]=curl [script]=bsdutils
)
# CI only: docker.io and debootstrap run the systemd host test (a Debian 12 base debootstrapped from
# Debian's archive: no registry); ca-certificates lets npm ci reach the registry over https; procps (ps,
# which the tests use to find processes) is missing from minimal images.
declare -A ci=(
  [docker]=docker.io [debootstrap]=debootstrap [update-ca-certificates]=ca-certificates [ps]=procps
)

if [ "${1:-}" = --list ]; then
  {
    printf '%s\n' "${need[@]}"
    if [ "${2:-}" = --ci ]; then printf '%s\n' "${ci[@]}"; fi
  } | sort -u
  exit 0
fi

missing=()
for cmd in "${!need[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (install them: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
