#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) base image with systemd from Debian's archive, without Docker's registry:
# debootstrap a minimal root file system, then `docker import` it. The server image (infra/devDockerfile.ts)
# builds FROM it in CI (test/harness/container.ts) and, on a laptop that cannot pull debian:bookworm, in the
# dev stack (set apt-repo:devContainer.baseImage to the tag below).
#
# Usage: sudo bash scripts/debian-base-image.sh [TAG]
#   TAG                 image tag (default apt-repo-base:bookworm); nothing is done when it already exists
#   APT_REPO_MIRROR     Debian mirror (default http://deb.debian.org/debian)
# Needs root, debootstrap (apt-get install debootstrap) and a Docker daemon (bash scripts/dockerd.sh).
# Exits non-zero when debootstrap or the import fails; the temporary root is removed either way.
set -euo pipefail

tag="${1:-apt-repo-base:bookworm}"
mirror="${APT_REPO_MIRROR:-http://deb.debian.org/debian}"
export PATH="$PATH:/usr/sbin:/sbin"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists" >&2
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "debootstrap not found: apt-get install -y debootstrap" >&2
  exit 1
fi

dir="$(mktemp -d /var/tmp/apt-repo-base.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
echo "debootstrap bookworm into $dir from $mirror" >&2
# minbase + systemd, systemd-sysv (/sbin/init) and dbus (systemctl talks to PID 1 through it): the smallest
# root that boots to `running`. Everything else (sshd, nginx, nodejs) is the server image's job.
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$dir" "$mirror" >&2
# The archive's lists and .debs are not needed in the image; the server image runs apt-get update itself.
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
# (docker import takes CMD but not STOPSIGNAL: the server image sets that.)
tar -C "$dir" -c . | docker import --change 'CMD ["/sbin/init"]' - "$tag" >/dev/null
echo "base image $tag built" >&2
