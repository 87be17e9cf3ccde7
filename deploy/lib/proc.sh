# shellcheck shell=bash
# Processes of deploy/cluster.sh, tracked by pid files in $PID_DIR. Each file
# holds "PID STARTTIME": a pid alone may by now belong to someone else's
# process, and only processes this script started may be signalled.

# PID -> its start time in clock ticks since boot, the state letter before it.
proc_stat() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # The command name (field 2) may hold spaces; the rest follows its ')'.
  read -r -a fields <<<"${stat##*) }"
  echo "${fields[19]} ${fields[0]}"
}

# NAME LOG CMD... : start CMD in a session of its own (a Ctrl-C on the
# terminal reaches only cluster.sh, which then stops everything in order).
proc_spawn() {
  local name=$1 log=$2 pid stat
  shift 2
  echo "=== $(date '+%F %T') $*" >>"$log"
  setsid "$@" >>"$log" 2>&1 </dev/null &
  pid=$!
  # It may already have failed and been reaped: the file then names a
  # process that is not running, which the caller's readiness wait reports.
  stat=$(proc_stat "$pid") || stat=exited
  echo "$pid ${stat%% *}" >"$PID_DIR/$name.pid"
}

# NAME -> the pid, if that process is still the one started and not a zombie.
proc_pid() {
  local file=$PID_DIR/$1.pid pid start now state
  [ -f "$file" ] || return 1
  read -r pid start <"$file" || return 1
  read -r now state < <(proc_stat "$pid") || return 1
  [ "$now" = "$start" ] && [ "$state" != Z ] || return 1
  echo "$pid"
}

# NAME SIGNAL TIMEOUT_S : signal it, wait for it to exit, SIGKILL as a last
# resort; forget it either way.
proc_stop() {
  local name=$1 sig=$2 timeout=$3 pid i
  if pid=$(proc_pid "$name"); then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      proc_pid "$name" >/dev/null || break
      sleep 0.1
    done
    if proc_pid "$name" >/dev/null; then
      echo "$name did not stop within ${timeout}s after SIG$sig: killing it" >&2
      # Its whole process group: proc_spawn made it the leader, so the group
      # holds only it and its own children (nginx's workers).
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    # Reaps it when it is our child (foreground mode); harmless otherwise.
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_DIR/$name.pid"
}
