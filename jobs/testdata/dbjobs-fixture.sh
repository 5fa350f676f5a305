#!/usr/bin/env bash
# A partition-side jobs script for tests, written from the behaviour of SlapOS's dbjobs
# (software/repman/templates/dbjobs.in) and replication-manager's jobs protocol: for each
# task it reads the newest row of replication_manager_schema.jobs with done=0, marks every
# such row done=1 (the manager sees the job was taken), runs it, and sets end and result.
#   mariabackup        mariadb-backup --stream=xbstream | socat to the row's server:port
#   reseedmariabackup  socat listens on SOCAT_PORT, mbstream -x, mariadb-backup --prepare,
#                      the server is stopped, its datadir replaced, started again, and
#                      gtid_slave_pos set from the backup's binlog info before START SLAVE
#   reseedmysqldump    socat listens on SOCAT_PORT | gunzip | mariadb, then START SLAVE
#   error              the error log | socat to the row's server:port
# Environment: CNF (client option file, 0600), DATADIR, BACKUPDIR (same file system as
# DATADIR), TMPDIR, SOCAT_PORT, BIND, ERRLOG, STOP_CMD and START_CMD (the supervisor).
set -u
SQL() { mariadb --defaults-file="$CNF" -N -B -e "$1"; }
OUT="$TMPDIR/dbjob.out"
doneJob() {
  local r; r=$(tail -c 900 "$OUT" 2>/dev/null | base64 -w0)
  SQL "SET sql_log_bin=0; UPDATE replication_manager_schema.jobs SET end=NOW(), result=FROM_BASE64('$r') WHERE id=$ID"
}
waitUp() { for _ in $(seq 1 300); do SQL "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
for job in mariabackup reseedmariabackup reseedmysqldump error; do
  TASK=$(SQL "SELECT CONCAT(id,'@',server,':',port) FROM replication_manager_schema.jobs WHERE task='$job' AND done=0 ORDER BY id DESC LIMIT 1" 2>/dev/null)
  [ -z "$TASK" ] && continue
  ID=${TASK%%@*}
  ADDRESS=${TASK#*@}
  SQL "SET sql_log_bin=0; UPDATE replication_manager_schema.jobs SET done=1 WHERE done=0 AND task='$job'"
  : > "$OUT"
  case "$job" in
    mariabackup)
      scratch=$(mktemp -d "$TMPDIR/mb.XXXXXX")
      mariadb-backup --defaults-file="$CNF" --backup --stream=xbstream --target-dir="$scratch" --datadir="$DATADIR" 2>>"$OUT" \
        | socat -u stdio "TCP:$ADDRESS" 2>>"$OUT"
      echo "exit ${PIPESTATUS[*]}" >>"$OUT"
      rm -rf "$scratch"
      ;;
    reseedmariabackup)
      rm -rf "$BACKUPDIR"; mkdir -p "$BACKUPDIR"
      echo "Waiting backup." >"$OUT"
      socat -u "TCP-LISTEN:$SOCAT_PORT,bind=$BIND,reuseaddr" STDOUT | mbstream -x -C "$BACKUPDIR" 2>>"$OUT"
      if mariadb-backup --prepare --target-dir="$BACKUPDIR" >>"$OUT" 2>&1; then
        gtid=$(cut -f3 "$BACKUPDIR/xtrabackup_binlog_info" 2>/dev/null)
        $STOP_CMD >>"$OUT" 2>&1
        rm -rf "$DATADIR.old"; mv "$DATADIR" "$DATADIR.old" && mv "$BACKUPDIR" "$DATADIR"
        $START_CMD >>"$OUT" 2>&1
        if waitUp; then
          # The job row is not in the restored data (the original's partial restore keeps the
          # live replication_manager_schema): put it back, so that its end can be set.
          SQL "SET sql_log_bin=0; CREATE DATABASE IF NOT EXISTS replication_manager_schema;
            CREATE TABLE IF NOT EXISTS replication_manager_schema.jobs(id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, task VARCHAR(20), port INT, server VARCHAR(255), done TINYINT NOT NULL DEFAULT 0, state TINYINT NOT NULL DEFAULT 0, result VARCHAR(1000), start DATETIME, end DATETIME);
            INSERT IGNORE INTO replication_manager_schema.jobs(id, task, port, server, done, start) VALUES ($ID, '$job', ${ADDRESS##*:}, '${ADDRESS%:*}', 1, NOW())" >>"$OUT" 2>&1
          SQL "SET GLOBAL gtid_slave_pos='$gtid'; START SLAVE" >>"$OUT" 2>&1
          echo "reseeded at $gtid" >>"$OUT"
          rm -rf "$DATADIR.old"
        else
          echo "server did not start on the restored data" >>"$OUT"
        fi
      else
        echo "prepare failed: backup not restored" >>"$OUT"
      fi
      ;;
    reseedmysqldump)
      echo "Waiting backup." >"$OUT"
      socat -u "TCP-LISTEN:$SOCAT_PORT,bind=$BIND,reuseaddr" STDOUT | gunzip | mariadb --defaults-file="$CNF" >>"$OUT" 2>&1
      SQL "START SLAVE" >>"$OUT" 2>&1
      ;;
    error)
      socat -u "FILE:$ERRLOG" "TCP:$ADDRESS" 2>>"$OUT"
      ;;
  esac
  doneJob
done
