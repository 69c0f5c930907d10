"""Issue 13, point 7: each profile keeps its own generated paper files and PDF."""

from __future__ import annotations

import shutil

from pipelines import dag
from pipelines.scripts import aggregate, build_paper, dvcgen


def test_two_profiles_aggregate_into_separate_folders(toy_root):
    params = toy_root.params
    params.write_text(params.read_text() + "  big:\n    inherits: toy\n")
    shutil.copytree(toy_root.root / "results/toy/runs", toy_root.root / "results/big/runs")
    assert aggregate.main(["--profile", "toy"]) == 0
    toy_macros = (toy_root.root / "paper/generated/toy/macros.tex").read_bytes()
    assert aggregate.main(["--profile", "big"]) == 0
    assert (toy_root.root / "paper/generated/toy/macros.tex").read_bytes() == toy_macros
    big = (toy_root.root / "paper/generated/big/macros.tex").read_text()
    assert "\\newcommand{\\profile}{big}" in big and "\\newcommand{\\profile}{toy}" in toy_macros.decode()
    assert (toy_root.root / "paper/generated/big/tables/toy.tex").exists()
    assert (toy_root.root / "results/big/tables/summary.csv").exists()


def test_latexmk_reads_and_writes_only_the_profile_s_folders():
    mini, paper = dag.load_profile("mini"), dag.load_profile("paper")
    assert mini.pdf == "paper/build/mini/main.pdf" and paper.pdf == "paper/build/paper/main.pdf"
    cmd = build_paper.latexmk_command(paper)
    assert "-outdir=build/paper" in cmd and "-usepretex=\\def\\genroot{generated/paper/}" in cmd
    main_tex = (dag.ROOT / "paper/main.tex").read_text()
    assert "generated/" not in main_tex.replace("\\providecommand{\\genroot}{generated/mini/}", "").replace(
        "paper/generated/<profile>/", "")  # every generated path goes through \genroot


def test_both_engines_name_the_profile_s_paper_paths():
    for name in ("mini", "paper"):
        p = dag.load_profile(name)
        stages = dvcgen.build(p)["stages"]
        assert stages["paper"]["outs"] == [p.pdf] and f"--profile {name}" in stages["paper"]["cmd"]
        assert p.macros_tex in stages["aggregate"]["outs"] and p.generated_figures in stages["figures"]["outs"]
