#!/usr/bin/env bash
# Debian packages for the single-node SLURM test cluster (tests/test_slurm_cluster.py):
# slurmctld + slurmd + slurmdbd (accounting, which the Snakemake SLURM executor's `sacct`
# status queries need), the client commands, munge and MariaDB (slurmdbd's storage).
# Installs only: no daemon is started and nothing under /etc is written by us; the test starts
# its own daemons on a scratch slurm.conf (tests/cluster/start_slurm.sh). Runs as root with
# apt-get; anywhere else it says what to install and exits 0 (the test then fails under CI=true).
set -euo pipefail
DEBS=(slurmctld slurmd slurmdbd slurm-client munge mariadb-server)
have() { command -v slurmctld && command -v slurmd && command -v slurmdbd && command -v sbatch \
  && command -v sacct && command -v munged && command -v mariadb-install-db; } >/dev/null 2>&1
if have; then
  echo "cluster_setup: SLURM, munge and MariaDB already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "cluster_setup: not root with apt-get; to run the SLURM test install: apt-get install ${DEBS[*]}"
  exit 0
fi
t0=$(date +%s)
# A host without a policy-rc.d would start Debian's own munge/mariadb/slurm services on install;
# forbid that for the duration of the install only (a host's own policy-rc.d is left alone).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${DEBS[@]}" >/dev/null
have || { echo "cluster_setup: installed ${DEBS[*]} but a command is still missing" >&2; exit 1; }
echo "cluster_setup: installed ${DEBS[*]} in $(( $(date +%s) - t0 ))s"
