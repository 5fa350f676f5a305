#!/usr/bin/env bash
# make demo: a demo cluster on this machine. Installs what is missing (Debian packages, as
# root), builds the binary, then runs `replication-manager-pro demo`: three MariaDB servers in
# GTID replication, ProxySQL in front when its binary is found ($PROXYSQL_BIN,
# ../shared/tools/proxysql/proxysql beside the repository, or PATH; it has no Debian
# package) and HAProxy otherwise, the daemon and its web UI. The demo prints the IPv6 and
# IPv4 addresses to connect through the proxy. Arguments go to the demo command
# (e.g. --proxy haproxy). Ctrl-C cleans everything up.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --demo

export PATH="$PATH:/usr/local/go/bin"
make --no-print-directory build
exec bin/replication-manager-pro demo --dir "$PWD/demo" "$@"
