"""Study functions: one per experiment family, each a DAG cell entry (see pipelines/README.md)."""
