#!/usr/bin/env bash
# Start a single-node SLURM cluster with accounting, entirely inside one scratch folder.
#
#   tests/cluster/start_slurm.sh DIR      (as root; stop it with tests/cluster/stop_slurm.sh DIR)
#
# DIR gets its own munge key and socket, a MariaDB data directory (TCP on 127.0.0.1 only),
# slurm.conf/slurmdbd.conf/gres.conf, state, spool, pid and log files. Nothing under /etc or /run
# is written and no configuration there is read: every daemon gets its paths on the command line
# or through SLURM_CONF (mariadbd --no-defaults), and every TCP port is a free one picked now, so a
# host's own SLURM, munge or MariaDB is untouched.
#
# The cluster: node `localhost` (this machine's memory, at least 8 CPUs, one stand-in GPU), partitions
# `cpu` (default) and `gpu` and account `circadian` (the names pipelines/profiles/slurm uses),
# slurmdbd accounting enforcing associations; root's default account stays `root`, so a job charged
# to `circadian` was charged by the profile.
# On success DIR/env holds the `export SLURM_CONF=... PATH=...` that points commands at it; on failure the script prints the log tail of
# the daemon that did not come up and exits non-zero (the caller then runs stop_slurm.sh).
set -euo pipefail

DIR=${1:?usage: start_slurm.sh SCRATCH_DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CLUSTER=circadian-test
ACCOUNT=circadian

die() {
  echo "start_slurm: $1" >&2
  shift
  for log in "$@"; do
    [ -f "$log" ] && { echo "--- tail of $log" >&2; tail -n 30 "$log" >&2; }
  done
  exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root (the daemons run as root on a scratch config)"
for cmd in munged mungekey mariadb-install-db mariadbd mariadb slurmdbd slurmctld slurmd sacctmgr sinfo; do
  command -v "$cmd" >/dev/null || die "$cmd not found: run .ci/cluster_setup.sh (apt-get install slurmctld slurmd slurmdbd slurm-client munge mariadb-server)"
done
# unix sockets are limited to 107 bytes
[ ${#DIR} -le 80 ] || die "scratch path too long for unix sockets (${#DIR} > 80 chars): $DIR"

wait_for() {  # wait_for SECONDS WHAT LOG... -- COMMAND...: retry COMMAND every 0.2 s
  local limit=$1 what=$2
  shift 2
  local logs=()
  while [ "$1" != "--" ]; do logs+=("$1"); shift; done
  shift
  local deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$what did not come up within ${limit}s" "${logs[@]}"
    sleep 0.2
  done
}

free_ports() {  # N free TCP ports on 127.0.0.1, bound at once so they differ
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

mkdir -p "$DIR"/{etc,munge,db,state,spool,run,log}
chmod 700 "$DIR/munge" "$DIR/etc"
read -r CTLD_PORT SLURMD_PORT DBD_PORT DB_PORT <<<"$(free_ports 4)"

# --- munge: own key, socket, pid, seed and log file --------------------------------------------
# --force: munged wants every folder above its socket searchable by all users, and scratch folders
# (pytest's are 0700) are not; every client of this cluster runs as root.
MUNGE_SOCKET=$DIR/munge/munge.socket
mungekey --create --keyfile="$DIR/munge/munge.key" --force
munged --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
  --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log" --force
wait_for 10 munged "$DIR/log/munged.log" -- sh -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'"

# --- MariaDB: own data directory, TCP on 127.0.0.1 at a free port, no option files read -------
DB_PASS=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
mariadb-install-db --no-defaults --user=root --datadir="$DIR/db" --auth-root-authentication-method=socket \
  --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed" "$DIR/log/mariadb-install.log"
mariadbd --no-defaults --user=root --datadir="$DIR/db" --socket="$DIR/run/mariadb.sock" \
  --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$DIR/run/mariadb.pid" \
  --log-error="$DIR/log/mariadb.log" --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
  --innodb-lock-wait-timeout=900 --skip-log-bin >/dev/null 2>&1 &
echo $! >"$DIR/run/mariadb.launcher.pid"
wait_for 30 MariaDB "$DIR/log/mariadb.log" -- mariadb --no-defaults --socket="$DIR/run/mariadb.sock" -u root -e "select 1"
mariadb --no-defaults --socket="$DIR/run/mariadb.sock" -u root -e "
  CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || die "could not create the slurm database user" "$DIR/log/mariadb.log"

# --- configuration ------------------------------------------------------------------------------
# This machine's memory as slurmd detects it; at least 8 CPUs even on a 2-core machine
# (SlurmdParameters=config_overrides lets slurmd trust slurm.conf), so the test's short jobs,
# which mostly wait on Python imports, run side by side instead of in waves.
read -r NPROC MEM_MB <<<"$(slurmd -C | head -1 | sed -E 's/.* CPUs=([0-9]+) .* RealMemory=([0-9]+).*/\1 \2/')"
[ -n "$NPROC" ] && [ -n "$MEM_MB" ] || die "slurmd -C did not report this machine's CPUs and memory: $(slurmd -C 2>&1 | head -3)"
CPUS=$((NPROC > 8 ? NPROC : 8))
cat >"$DIR/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
PlugStackConfig=$DIR/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=30
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
MinJobAge=300
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# the munge socket for talking to slurmdbd (slurm.conf(5): AccountingStoragePass)
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
EOF
# A stand-in GPU so that `--gpus=1` jobs schedule on a machine without one: slurmd drops a
# file-less GPU and wants a character device, so it names /dev/null (only stat()ed: with
# task/none nothing constrains or opens it). Jobs see CUDA_VISIBLE_DEVICES=0 and no GPU.
echo "NodeName=localhost Name=gpu File=/dev/null" >"$DIR/etc/gres.conf"
: >"$DIR/etc/plugstack.conf"
cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$DIR/etc/slurmdbd.conf"
export SLURM_CONF=$DIR/etc/slurm.conf
# snakemake-executor-plugin-slurm-jobstep (0.6.1) starts each job's command with an inner `srun`
# after dropping every SLURM_* variable, SLURM_CONF included. On a real node that srun finds
# /etc/slurm/slurm.conf (or slurmd's configless cache); this cluster's config lives here, so jobs
# get an `srun` first on PATH that restores SLURM_CONF and runs the real one.
mkdir -p "$DIR/bin"
cat >"$DIR/bin/srun" <<EOF2
#!/bin/sh
SLURM_CONF=$SLURM_CONF exec $(command -v srun) "\$@"
EOF2
chmod 755 "$DIR/bin/srun"
printf 'export SLURM_CONF=%s\nexport PATH=%s:$PATH\n' "$SLURM_CONF" "$DIR/bin" >"$DIR/env"

# --- daemons: slurmdbd, then the cluster and its account, then slurmctld and slurmd -------------
slurmdbd
wait_for 60 slurmdbd "$DIR/log/slurmdbd.log" -- sacctmgr -n list cluster
sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="circadian pipeline" Organization=circadian >/dev/null
sacctmgr -i add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
slurmctld
wait_for 30 slurmctld "$DIR/log/slurmctld.log" -- scontrol ping
slurmd -N localhost
wait_for 30 "slurmd (node localhost idle)" "$DIR/log/slurmd.log" "$DIR/log/slurmctld.log" -- \
  sh -c 'sinfo -h -n localhost -o %t | grep -qx idle'
echo "start_slurm: cluster $CLUSTER up in $DIR (SLURM_CONF=$SLURM_CONF)"
