"""A throwaway single-node SLURM cluster with accounting, for tests/test_slurm_cluster.py.

``start_slurm.sh DIR`` brings up munge, MariaDB, slurmdbd, slurmctld and slurmd on a scratch
slurm.conf under DIR; ``stop_slurm.sh DIR`` ends them by their pid files. This module wraps the two
scripts and the few queries the tests make (``sacct`` rows, job ids from Snakemake's output).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
START = HERE / "start_slurm.sh"
STOP = HERE / "stop_slurm.sh"
DAEMONS = ("munged", "mungekey", "mariadb-install-db", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sbatch", "sacct", "sacctmgr")
SETUP_HINT = "run `bash .ci/cluster_setup.sh` as root (apt-get install slurmctld slurmd slurmdbd slurm-client munge mariadb-server)"
SACCT_FIELDS = ("JobIDRaw", "JobName", "Partition", "Account", "State", "ExitCode", "AllocCPUS", "ReqMem", "Timelimit", "AllocTRES")


def missing_requirements() -> str | None:
    """Why this machine cannot start the cluster (not root, commands missing), or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "the SLURM cluster test starts daemons as root; run it as root"
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        return f"{', '.join(missing)} not found: {SETUP_HINT}"
    return None


@dataclasses.dataclass
class Cluster:
    """A running scratch cluster: its folder and the environment that points commands at it."""

    root: Path
    env: dict[str, str]

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60, check=True, **kw)

    def sacct(self, jobids: list[str]) -> dict[str, dict[str, str]]:
        """Accounting rows (slurmdbd) of the given jobs, by job id."""
        out = self.run(
            ["sacct", "-X", "--parsable2", "--noheader", "-j", ",".join(jobids), "--format=" + ",".join(SACCT_FIELDS)]
        ).stdout
        rows = [dict(zip(SACCT_FIELDS, line.split("|"))) for line in out.splitlines() if line.strip()]
        return {row["JobIDRaw"]: row for row in rows}

    def daemon_pids(self) -> list[int]:
        """The pids the daemons wrote under the cluster's folder (munged, MariaDB, the SLURM three)."""
        files = [*(self.root / "run").glob("*.pid"), self.root / "munge" / "munged.pid"]
        return sorted({int(f.read_text().strip()) for f in files if f.is_file() and f.read_text().strip().isdigit()})

    def squeue(self) -> list[dict[str, str]]:
        """Jobs slurmctld holds: id, state, name."""
        out = self.run(["squeue", "-h", "-o", "%i|%T|%j"]).stdout
        return [dict(zip(("id", "state", "name"), line.split("|"))) for line in out.splitlines() if line.strip()]


def start(root: Path, base_env: dict[str, str]) -> Cluster:
    """Start the cluster under ``root``; on failure stop what came up and raise with the logs."""
    proc = subprocess.run(["bash", str(START), str(root)], capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        stop(root)
        raise RuntimeError(f"start_slurm.sh failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    env = {k: v for k, v in base_env.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_", "SACCT_"))}
    env["SLURM_CONF"] = str(root / "etc" / "slurm.conf")  # every SLURM command reads this cluster's config
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # the srun shim (start_slurm.sh)
    return Cluster(root=root, env=env)


def stop(root: Path, purge: bool = False) -> None:
    subprocess.run(["bash", str(STOP), str(root), *(["--purge"] if purge else [])], capture_output=True, text=True, timeout=120)


SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


def submitted_jobs(output: str) -> dict[str, Path]:
    """SLURM job id -> its SLURM log file, from the executor's "has been submitted" lines."""
    return {m.group(2): Path(m.group(3)) for m in SUBMITTED.finditer(output)}
