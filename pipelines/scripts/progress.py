"""Whole-run progress with an ETA, read from Snakemake's own log.

``snakemake --profile pipelines/profiles/local 2>&1 | python -m pipelines.scripts.progress --cores 2 --brief``
passes Snakemake's lines through (``--brief``: all but its per-job blocks) and, after each finished
job, prints one line::

    progress: 37/145 jobs (26%), 2m10s elapsed, about 5m40s left (run_cell 31/127, mean 4.1s)

and at the end a summary of the time per rule (``--json PATH`` writes it as JSON). The ETA is the
expected time of the jobs left divided by the cores: a rule's expected job time is the mean of its
jobs finished so far in this run, else of the jobs of ``--history`` (a JSON written by
benchmarks/repro.py or by this script), else the mean of every job finished so far.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")
STEPS = re.compile(r"^(\d+) of (\d+) steps \(\d+%\) done$")
STATS_ROW = re.compile(r"^(\w+)\s+(\d+)$")
HEADER_DATE = re.compile(r"^\s+Date: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$")


def _parse_stamp(text: str) -> float:
    return _dt.datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").timestamp()


def fmt_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


@dataclasses.dataclass
class Job:
    jobid: int
    rule: str
    wildcards: dict[str, str]
    start: float | None  # None: its start was not in the log (snakemake --quiet rules)
    end: float | None = None

    @property
    def seconds(self) -> float:
        if self.start is None:
            return 0.0
        return (self.end or self.start) - self.start

    @property
    def label(self) -> str:
        return self.rule + "".join(f" {k}={v}" for k, v in self.wildcards.items())


@dataclasses.dataclass
class RunLog:
    """The state of one Snakemake run, fed its log line by line."""

    cores: int = 1
    history: dict[str, float] = dataclasses.field(default_factory=dict)  # rule -> expected seconds per job
    planned: dict[str, int] = dataclasses.field(default_factory=dict)  # rule -> jobs (Snakemake's job stats)
    jobs: dict[int, Job] = dataclasses.field(default_factory=dict)
    done: int = 0
    total: int = 0
    started_at: float | None = None
    _stamp: float | None = None
    _pending: Job | None = None
    _in_stats: bool = False

    def feed(self, line: str) -> bool:
        """Read one line; True when it finished a job (time to print progress)."""
        line = line.rstrip("\n")
        if line.startswith("Job stats:"):
            self._in_stats, self.planned = True, {}
            return False
        if self._in_stats:
            m = STATS_ROW.match(line.strip())
            if m and m.group(1) != "total":
                self.planned[m.group(1)] = int(m.group(2))
            elif not line.strip() and self.planned:
                self._in_stats = False
            return False
        if m := HEADER_DATE.match(line):
            self.started_at = _dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        elif m := STAMP.match(line):
            self._stamp = _parse_stamp(m.group(1))
            self.started_at = self.started_at if self.started_at is not None else self._stamp
        elif (m := START.match(line)) and self._stamp is not None:
            self._pending = Job(-1, m.group(1), {}, self._stamp)
        elif (m := WILDCARDS.match(line)) and self._pending is not None:
            self._pending.wildcards = dict(kv.split("=", 1) for kv in m.group(1).split(", ") if "=" in kv)
        elif (m := JOBID.match(line)) and self._pending is not None:
            self._pending.jobid = int(m.group(1))
            self.jobs[self._pending.jobid] = self._pending
        elif (m := FINISHED.match(line)) and self._stamp is not None:
            job = self.jobs.setdefault(int(m.group(1)), Job(int(m.group(1)), m.group(2), {}, None))
            job.end = self._stamp
        elif m := STEPS.match(line):
            self.done, self.total = int(m.group(1)), int(m.group(2))
            return True
        return False

    @property
    def now(self) -> float:
        """The time of the latest log line (Snakemake stamps each job's start and end)."""
        return self._stamp if self._stamp is not None else time.time()

    def finished(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.end is not None]

    def timed(self) -> list[Job]:
        """Finished jobs whose start is known too."""
        return [j for j in self.finished() if j.start is not None]

    def expected(self, rule: str) -> float:
        """Expected seconds of one more job of ``rule``."""
        own = [j.seconds for j in self.timed() if j.rule == rule]
        if own:
            return sum(own) / len(own)
        if rule in self.history:
            return self.history[rule]
        every = [j.seconds for j in self.timed()]
        return sum(every) / len(every) if every else 0.0

    def remaining_seconds(self, now: float) -> float:
        """Expected job-seconds left (running jobs count what they have left), over the cores.

        Without job starts in the log (``--quiet rules``): the throughput so far, elapsed time per
        finished job, times the jobs left.
        """
        if len(self.timed()) < len(self.finished()) or not self.planned:
            elapsed = now - (self.started_at or now)
            return elapsed / self.done * (self.total - self.done) if self.done else 0.0
        left = 0.0
        for rule, planned in self.planned.items():
            mine = [j for j in self.jobs.values() if j.rule == rule]
            running = [j for j in mine if j.end is None]
            not_started = max(0, planned - len(mine))
            exp = self.expected(rule)
            left += not_started * exp + sum(max(0.0, exp - (now - (j.start or now))) for j in running)
        return left / max(1, self.cores)

    def line(self, now: float) -> str:
        elapsed = now - (self.started_at or now)
        pct = round(100 * self.done / self.total) if self.total else 0
        cells = [j for j in self.timed() if j.rule == "run_cell"]
        detail = ""
        if cells and "run_cell" in self.planned:
            detail = f" (run_cell {len(cells)}/{self.planned['run_cell']}, mean {self.expected('run_cell'):.1f}s)"
        return (f"progress: {self.done}/{self.total} jobs ({pct}%), {fmt_seconds(elapsed)} elapsed, "
                f"about {fmt_seconds(self.remaining_seconds(now))} left{detail}")

    def summary(self) -> dict[str, Any]:
        """Time per rule (and per study for cells) of the finished jobs, and the slowest jobs."""
        per_rule: dict[str, dict[str, float]] = {}
        per_study: dict[str, dict[str, float]] = {}
        for job in self.timed():
            groups = [(per_rule, job.rule)]
            if "study" in job.wildcards:
                groups.append((per_study, job.wildcards["study"]))
            for table, key in groups:
                row = table.setdefault(key, {"jobs": 0, "total_s": 0.0, "max_s": 0.0})
                row["jobs"] += 1
                row["total_s"] += job.seconds
                row["max_s"] = max(row["max_s"], job.seconds)
        for table in (per_rule, per_study):
            for row in table.values():
                row["mean_s"] = row["total_s"] / row["jobs"]
        ends = [j.end for j in self.finished() if j.end is not None]
        slowest = sorted(self.timed(), key=lambda j: -j.seconds)[:10]
        return {
            "jobs_done": self.done,
            "jobs_total": self.total,
            "wall_s_from_log": (max(ends) - self.started_at) if ends and self.started_at else None,
            "per_rule": per_rule,
            "per_study": per_study,
            "slowest_jobs": [{"job": j.label, "seconds": j.seconds} for j in slowest],
        }


def history_from(path: str | Path | None) -> dict[str, float]:
    """Expected seconds per rule from an earlier JSON of this script or benchmarks/repro.py."""
    if not path or not Path(path).exists():
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rules = data.get("per_rule") or data.get("progress", {}).get("per_rule") or {}
    return {rule: float(row["mean_s"]) for rule, row in rules.items() if "mean_s" in row}


def render_summary(summary: dict[str, Any]) -> str:
    rows = sorted(summary["per_rule"].items(), key=lambda kv: -kv[1]["total_s"])
    out = ["time per rule (job-seconds; jobs; mean):"]
    out += [f"  {rule:<28} {fmt_seconds(r['total_s']):>8}  {int(r['jobs']):>4}  {r['mean_s']:.1f}s" for rule, r in rows]
    if summary["per_study"]:
        out.append("cells per study:")
        out += [f"  {s:<28} {fmt_seconds(r['total_s']):>8}  {int(r['jobs']):>4}  {r['mean_s']:.1f}s"
                for s, r in sorted(summary["per_study"].items(), key=lambda kv: -kv[1]["total_s"])]
    return "\n".join(out)


JOB_INFO = re.compile(r"^(Shell command: |Select jobs to execute|Execute \d+ jobs|(local)?rule \w+:$|\[\w{3} \w{3} )")


def _hidden_in_brief(line: str, after_hidden: bool) -> bool:
    """A line of a per-job block: its header, its indented fields, its finish and step lines."""
    text = line.rstrip("\n")
    if text.startswith((" ", "\t")) and text.strip():
        return after_hidden  # the fields of a job block, but not those of an error block
    return bool(JOB_INFO.match(text) or FINISHED.match(text) or STEPS.match(text))


def follow(lines: Iterable[str], log: RunLog, out: IO[str], *, echo: bool = True, brief: bool = False) -> RunLog:
    """Pass ``lines`` to ``out`` and add a progress line after each finished job.

    ``brief`` leaves out Snakemake's per-job blocks and step counts (what ``--quiet rules`` hides), keeping
    everything else: errors with their details, warnings, the job stats.
    """
    after_hidden = False
    for line in lines:
        hidden = brief and _hidden_in_brief(line, after_hidden)
        if line.strip() and not line.startswith((" ", "\t")):
            after_hidden = hidden
        if echo and not hidden:
            out.write(line if line.endswith("\n") else line + "\n")
        if log.feed(line):
            out.write(log.line(log.now) + "\n")
            out.flush()
    return log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=1, help="the cores Snakemake runs on (for the ETA)")
    ap.add_argument("--history", help="JSON of an earlier run (benchmarks/repro.py or --json) for first estimates")
    ap.add_argument("--json", help="write the summary (time per rule and per study) here")
    ap.add_argument("--quiet", action="store_true", help="print only the progress lines and the summary")
    ap.add_argument("--brief", action="store_true",
                    help="leave out Snakemake's per-job blocks (as its --quiet rules does) but keep errors")
    args = ap.parse_args(argv)
    log = follow(sys.stdin, RunLog(cores=args.cores, history=history_from(args.history)), sys.stdout,
                 echo=not args.quiet, brief=args.brief)
    summary = log.summary()
    print(render_summary(summary))
    if args.json:
        from circadian_core.record import write_json_atomic

        write_json_atomic(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
