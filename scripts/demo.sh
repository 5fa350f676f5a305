#!/usr/bin/env bash
# The demo cluster (three local MariaDB servers in GTID replication behind HAProxy, with the
# daemon and its UI) arrives with the API/UI issue. Until then, say so plainly.
set -euo pipefail
echo "make demo: not yet. The demo cluster lands with the API and web UI work (see docs/)."
echo "Meanwhile: 'make test' starts real 3-node GTID clusters; 'bin/replication-manager-pro config check --config FILE' validates a configuration."
