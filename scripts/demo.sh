#!/usr/bin/env bash
# make demo: a demo cluster on this machine. Installs what is missing (Debian packages, as
# root), builds the binary, then runs `replication-manager-pro demo`: three MariaDB servers in
# GTID replication, HAProxy in front, the daemon and its web UI. Ctrl-C cleans everything up.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --demo

export PATH="$PATH:/usr/local/go/bin"
make --no-print-directory build
exec bin/replication-manager-pro demo --dir "$PWD/demo" "$@"
