#!/usr/bin/env bash
# make demo: a demo cluster on this machine. Installs what is missing (Debian packages, as
# root), builds the binary, then runs `replication-manager-pro demo`: three MariaDB servers in
# GTID replication, HAProxy in front, the daemon and its web UI. Ctrl-C cleans everything up.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(mariadb-server mariadb-client haproxy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "demo: missing Debian packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "demo: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts a system mariadbd on install; the demo runs its own on free ports.
service mariadb stop >/dev/null 2>&1 || true

export PATH="$PATH:/usr/local/go/bin"
make --no-print-directory build
exec bin/replication-manager-pro demo --dir "$PWD/demo" "$@"
