"""The reproduction pipeline: params.yaml -> runs -> tables, figures, macros -> paper.

``pipelines.dag`` turns params.yaml into the list of cells both engines run (Snakemake reads it in
the Snakefile, ``pipelines.scripts.dvcgen`` writes dvc.yaml from it).
"""
