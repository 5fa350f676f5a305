#!/usr/bin/env bash
# Installs the Debian packages the tests (or, with --demo, the demo) need, when missing.
# Needs root for apt-get; without it, names the missing packages and carries on (the tests
# that need them skip and say so).
set -euo pipefail
# libgnutls30 and libuuid1: the runtime libraries of ProxySQL (../shared/tools/proxysql,
# not a Debian package; the tests and the demo use it from there).
pkgs=(mariadb-server mariadb-client mariadb-backup haproxy restic sysbench socat iproute2 nftables curl jq chromium libgnutls30 libuuid1 etcd-server supervisor)
[ "${1:-}" = "--demo" ] && pkgs=(mariadb-server mariadb-client haproxy libgnutls30 libuuid1)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (as root: apt-get install -y ${missing[*]})" >&2
    [ "${1:-}" = "--demo" ] && exit 1
    exit 0
  fi
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts a system mariadbd on install; tests and the demo run their own on free
# ports, so stop it to spare the cores (ignored when nothing runs); the same for etcd (the
# manager high-availability tests start their own members) and supervisord (the agent's
# supervisorctl test starts its own, on its own socket).
if [ "$(id -u)" -eq 0 ]; then
  for s in mariadb etcd supervisor; do service "$s" stop >/dev/null 2>&1 || true; done
fi
