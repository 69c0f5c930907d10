#!/usr/bin/env bash
# Stop the scratch cluster that tests/cluster/start_slurm.sh DIR started, and only it:
# cancel its jobs, then end each daemon by the pid it wrote under DIR (never by name).
#   tests/cluster/stop_slurm.sh DIR [--purge]    (--purge also removes DIR)
set -uo pipefail

DIR=${1:?usage: stop_slurm.sh SCRATCH_DIR [--purge]}
[ -d "$DIR" ] || exit 0
DIR=$(cd "$DIR" && pwd)

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -s "$1" ] && tr -dc 0-9 <"$1"; }
# a pid from DIR's pid files is ours only if that process names DIR in its command line or
# environment (SLURM_CONF): a stale pid file never ends a process that reused the number
ours() { alive "$1" && cat "/proc/$1/cmdline" "/proc/$1/environ" 2>/dev/null | tr '\0' '\n' | grep -qF "$DIR/"; }

if [ -f "$DIR/etc/slurm.conf" ] && ours "$(pid_of "$DIR/run/slurmctld.pid")"; then
  export SLURM_CONF=$DIR/etc/slurm.conf
  scancel --full --cluster=circadian-test --user=root 2>/dev/null
  for _ in $(seq 50); do  # up to 10 s for running jobs to end
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
    sleep 0.2
  done
fi

stop() {  # stop PIDFILE...: SIGTERM to all at once, SIGKILL to any still there after 15 s
  local pids=() pid
  for f in "$@"; do
    pid=$(pid_of "$f") && ours "$pid" && pids+=("$pid")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null
  local left
  for _ in $(seq 150); do
    left=0
    for pid in "${pids[@]}"; do alive "$pid" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    alive "$pid" && { echo "stop_slurm: pid $pid ignored SIGTERM; killing it" >&2; kill -KILL "$pid" 2>/dev/null; }
  done
}
# the SLURM daemons first (slurmdbd still has its database), then MariaDB and munge
stop "$DIR/run/slurmd.pid" "$DIR/run/slurmctld.pid" "$DIR/run/slurmdbd.pid"
stop "$DIR/run/mariadb.pid" "$DIR/run/mariadb.launcher.pid" "$DIR/munge/munged.pid"

if [ "${2:-}" = "--purge" ]; then
  rm -rf "$DIR"
fi
exit 0
