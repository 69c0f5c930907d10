"""The whole-run progress line and summary read from Snakemake's log (pipelines/scripts/progress.py)."""

from __future__ import annotations

import io

import pytest

from pipelines.scripts.progress import RunLog, follow, history_from

LOG = """\
Job stats:
job          count
---------  -------
run_cell         4
aggregate        1
all              1
total            6

Select jobs to execute...
Execute 2 jobs...

[Fri Dec  4 19:35:00 2026]
localrule run_cell:
    output: results/toy/runs/toy/plain/seed1.json
    jobid: 3
    wildcards: study=toy, variant=plain, seed=1
Shell command: python -m pipelines.scripts.run_cell toy plain 1

[Fri Dec  4 19:35:00 2026]
rule run_cell:
    jobid: 6
    wildcards: study=hal, variant=full, seed=2
[Fri Dec  4 19:35:10 2026]
Finished jobid: 3 (Rule: run_cell)
1 of 6 steps (17%) done
[Fri Dec  4 19:35:30 2026]
Finished jobid: 6 (Rule: run_cell)
2 of 6 steps (33%) done
"""


def test_jobs_times_and_the_eta_follow_the_log():
    out = io.StringIO()
    log = follow(io.StringIO(LOG), RunLog(cores=2, history={"aggregate": 6.0}), out, echo=False)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("progress: 1/6 jobs (17%), 0m10s elapsed")
    assert log.planned == {"run_cell": 4, "aggregate": 1, "all": 1}
    assert {j.jobid: j.seconds for j in log.finished()} == {3: 10.0, 6: 30.0}
    # left: 2 cells x mean 20 s + aggregate 6 s (history) + all (mean of finished, 20 s), over 2 cores
    assert log.remaining_seconds(log.now) == pytest.approx((2 * 20 + 6 + 20) / 2)
    assert lines[1] == "progress: 2/6 jobs (33%), 0m30s elapsed, about 0m33s left (run_cell 2/4, mean 20.0s)"
    s = log.summary()
    assert s["per_rule"]["run_cell"] == {"jobs": 2, "total_s": 40.0, "max_s": 30.0, "mean_s": 20.0}
    assert s["per_study"]["hal"]["total_s"] == 30.0 and s["slowest_jobs"][0]["job"].startswith("run_cell study=hal")


def test_a_running_job_counts_only_what_it_has_left():
    log = RunLog(cores=1, history={"run_cell": 50.0})
    for line in LOG.split("[Fri Dec  4 19:35:10 2026]")[0].splitlines():
        log.feed(line)
    # two cells running since 19:35:00 and two not started, 50 s each by history; aggregate/all unknown (0)
    assert log.remaining_seconds(log.now + 20) == pytest.approx(2 * 30 + 2 * 50)


def test_history_reads_an_earlier_summary(tmp_path):
    path = tmp_path / "repro.json"
    path.write_text('{"progress": {"per_rule": {"run_cell": {"jobs": 2, "total_s": 8, "mean_s": 4.0}}}}')
    assert history_from(path) == {"run_cell": 4.0}
    assert history_from(tmp_path / "absent.json") == {}


def test_brief_hides_job_blocks_and_keeps_errors():
    out = io.StringIO()
    error = "Error in rule aggregate:\n    jobid: 9\n    log: results/mini/logs/aggregate.log (check log file(s))\n"
    follow(io.StringIO(LOG + error), RunLog(), out, brief=True)
    text = out.getvalue()
    assert "Job stats:" in text and "progress: 2/6" in text
    assert error in text  # an error keeps its details
    assert "wildcards:" not in text and "Finished jobid" not in text and "rule run_cell:" not in text


def test_without_job_starts_the_eta_is_the_throughput_so_far():
    quiet = "  Date: 2026-12-04 19:34:50\n" + "\n".join(
        line for line in LOG.splitlines() if not line.startswith(("localrule", "rule", "    ")))
    log = follow(io.StringIO(quiet), RunLog(cores=2), io.StringIO(), echo=False)
    assert log.done == 2 and log.timed() == []
    # 40 s for 2 of 6 jobs -> 80 s for the 4 left
    assert log.remaining_seconds(log.now) == pytest.approx(80.0)
