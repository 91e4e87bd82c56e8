#!/usr/bin/env bash
# Makes sure a Docker daemon answers, for the systemd-host test (test/replay/systemd-host.e2e.test.ts) and the
# dev stack's image build. If `docker info` already answers, does nothing. Otherwise starts Debian's dockerd
# (package docker.io) in the background with its own data root and no bridge network: on our CI machines
# only the host network works (no iptables), and the registry is unreachable, so nothing here pulls.
#
# Usage: bash scripts/dockerd.sh
#   APT_REPO_DOCKER_ROOT  data root (default /var/lib/apt-repo-docker)
#   APT_REPO_DOCKER_LOG   daemon log (default /var/log/apt-repo-dockerd.log)
#   APT_REPO_DOCKER_WAIT  seconds to wait for `docker info` (default 60)
# Exits 0 once `docker info` answers; 1 (with the log's tail) when the daemon does not come up in time or
# cannot be started (not root, dockerd missing).
set -euo pipefail

root="${APT_REPO_DOCKER_ROOT:-/var/lib/apt-repo-docker}"
log="${APT_REPO_DOCKER_LOG:-/var/log/apt-repo-dockerd.log}"
wait_s="${APT_REPO_DOCKER_WAIT:-60}"
export PATH="$PATH:/usr/sbin:/sbin"

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd not found: install Debian's docker.io (apt-get install -y docker.io)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "docker does not answer and starting dockerd needs root (sudo bash $0)" >&2
  exit 1
fi

# A daemon of ours may already be starting (a second caller racing the first): wait for it rather than
# starting another one on the same socket.
pidfile="$root.pid"
if ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
  mkdir -p "$root" "$(dirname "$log")"
  echo "starting dockerd (data root $root, log $log)" >&2
  # setsid: the daemon outlives this script and the CI step's process group.
  setsid dockerd --data-root "$root" --pidfile "$pidfile" --bridge=none --iptables=false \
    >>"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$wait_s"); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd answers" >&2
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer within ${wait_s}s; last lines of $log:" >&2
tail -n 30 "$log" >&2 || true
exit 1
