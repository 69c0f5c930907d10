"""params.yaml -> the profile to run -> its cells, artifacts and output paths.

One cell is one (study, variant, seed) run. Both the Snakefile and the generated dvc.yaml call
these functions, so the two engines cannot disagree about what runs and where it writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from circadian_core.config import ConfigError, deep_merge

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "pipelines" / "schemas" / "params.schema.json"
PARAMS = ROOT / "params.yaml"


@dataclasses.dataclass(frozen=True)
class Study:
    """One experiment: a study function, its seeds, a base config and named variants."""

    name: str
    entry: str
    seeds: tuple[int, ...]
    base: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    needs: tuple[str, ...] = ()
    resources: dict[str, Any] = dataclasses.field(default_factory=dict)

    def config(self, variant: str) -> dict[str, Any]:
        """The full config of ``variant``: ``base`` deep-merged with the variant's overrides."""
        if variant not in self.variants:
            raise ConfigError(
                f"study {self.name!r} has no variant {variant!r}; "
                f"variants: {', '.join(self.variants)}"
            )
        return deep_merge(self.base, self.variants[variant])


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A derived input built once (a converted model, a feature cache, a pretrained backbone)."""

    name: str
    entry: str
    out: str
    config: dict[str, Any]
    needs: tuple[str, ...] = ()
    resources: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Cell:
    study: str
    variant: str
    seed: int


@dataclasses.dataclass(frozen=True)
class Profile:
    """The resolved profile: every path below is relative to the repository root."""

    name: str
    device: str
    studies: dict[str, Study]
    artifacts: dict[str, Artifact]

    @property
    def results(self) -> str:
        return f"results/{self.name}"

    def run_path(self, study: str, variant: str, seed: int | str) -> str:
        return f"{self.results}/runs/{study}/{variant}/seed{seed}.json"

    def work_dir(self, study: str, variant: str, seed: int | str) -> str:
        return f"{self.results}/work/{study}/{variant}/seed{seed}"

    def cells(self) -> list[Cell]:
        return [
            Cell(s.name, v, seed)
            for s in self.studies.values()
            for v in s.variants
            for seed in s.seeds
        ]

    def run_paths(self) -> list[str]:
        return [self.run_path(c.study, c.variant, c.seed) for c in self.cells()]

    def artifact_paths(self, names: tuple[str, ...] | list[str]) -> list[str]:
        missing = [n for n in names if n not in self.artifacts]
        if missing:
            raise ConfigError(
                f"profile {self.name!r} needs artifact(s) {', '.join(missing)} that it does not "
                f"define; add them under profiles.{self.name}.artifacts in params.yaml"
            )
        return [self.artifacts[n].out for n in names]

    def params_keys(self, study: str | None = None, artifact: str | None = None) -> list[str]:
        """The params.yaml keys a stage depends on (for DVC's ``params:``)."""
        chain = profile_chain(self.name)
        if study is not None:
            return [f"profiles.{p}.studies.{study}" for p in chain if _has(p, "studies", study)]
        if artifact is not None:
            return [f"profiles.{p}.artifacts.{artifact}" for p in chain if _has(p, "artifacts", artifact)]
        return [f"profiles.{p}" for p in chain]

    @property
    def tables(self) -> str:
        return f"{self.results}/tables"

    @property
    def figures(self) -> str:
        return f"{self.results}/figures"

    @property
    def generated(self) -> str:
        """What the paper \\input{}s for this profile (macros, sections, tables, figures)."""
        return f"paper/generated/{self.name}"

    @property
    def generated_tables(self) -> str:
        return f"{self.generated}/tables"

    @property
    def generated_figures(self) -> str:
        return f"{self.generated}/figures"

    @property
    def macros_tex(self) -> str:
        return f"{self.generated}/macros.tex"

    @property
    def sections_tex(self) -> str:
        return f"{self.generated}/sections.tex"

    @property
    def build_dir(self) -> str:
        """latexmk's output folder for this profile: one PDF per profile, none overwrites another."""
        return f"paper/build/{self.name}"

    @property
    def pdf(self) -> str:
        return f"{self.build_dir}/main.pdf"


@cache
def _raw(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} not found; run from the repository root or pass --params")
    with open(p, encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML {_yaml_where(err)}; fix that line of {p}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of keys (profile, profiles), got {type(data).__name__}")
    validate(data, where=str(p))
    return data


def _yaml_where(err: yaml.YAMLError) -> str:
    """``at line 12, column 5: mapping values are not allowed here`` from a PyYAML error."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if mark is None:
        return f"({problem})"
    return f"at line {mark.line + 1}, column {mark.column + 1} ({problem})"


def validate(data: dict[str, Any], where: str = "params.yaml") -> None:
    """Validate params against pipelines/schemas/params.schema.json; one clear error on failure."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        at = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: at {at}: {err.message}. Fix that key in {where} and rerun")


def _has(profile: str, kind: str, name: str, path: str | None = None) -> bool:
    raw = _raw(str(path or PARAMS))
    return name in (raw["profiles"][profile].get(kind) or {})


def profile_chain(name: str, path: str | Path | None = None) -> list[str]:
    """``name`` and the profiles it inherits from, base first."""
    profiles = _raw(str(path or PARAMS))["profiles"]
    chain: list[str] = []
    current: str | None = name
    while current is not None:
        if current not in profiles:
            raise ConfigError(
                f"unknown profile {current!r}; params.yaml defines: {', '.join(profiles)}"
            )
        if current in chain:
            raise ConfigError(f"profile inheritance loops at {current!r}")
        chain.insert(0, current)
        current = profiles[current].get("inherits")
    return chain


def active_profile_name(path: str | Path | None = None, override: str | None = None) -> str:
    """``override``, else ``$CIRCADIAN_PROFILE``, else params.yaml's ``profile``."""
    return override or os.environ.get("CIRCADIAN_PROFILE") or _raw(str(path or PARAMS))["profile"]


def load_profile(name: str | None = None, path: str | Path | None = None) -> Profile:
    """Resolve profile ``name`` (inheritance applied) from params.yaml."""
    path = str(path or PARAMS)
    name = active_profile_name(path, name)
    merged: dict[str, Any] = {}
    for p in profile_chain(name, path):
        block = {k: v for k, v in _raw(path)["profiles"][p].items() if k != "inherits"}
        merged = deep_merge(merged, block)
    merged = resolve_extends(merged, f"profiles.{name}")
    studies = {}
    for sname, s in (merged.get("studies") or {}).items():
        if s.get("enabled", True) is False:
            continue
        lacking = [k for k in ("entry", "seeds", "variants") if k not in s]
        if lacking:
            raise ConfigError(
                f"params.yaml: study {sname!r} of profile {name!r} lacks {', '.join(lacking)}; "
                f"add them under profiles.<profile>.studies.{sname}"
            )
        studies[sname] = Study(
            name=sname,
            entry=s["entry"],
            seeds=tuple(s["seeds"]),
            base=s.get("base") or {},
            variants={v: (o or {}) for v, o in s["variants"].items()},
            needs=tuple(s.get("needs") or ()),
            resources=s.get("resources") or {},
        )
    artifacts = {
        aname: Artifact(
            name=aname,
            entry=a["entry"],
            out=a["out"],
            config=a.get("config") or {},
            needs=tuple(a.get("needs") or ()),
            resources=a.get("resources") or {},
        )
        for aname, a in (merged.get("artifacts") or {}).items()
    }
    profile = Profile(name=name, device=merged.get("device", "auto"), studies=studies, artifacts=artifacts)
    for item in [*studies.values(), *artifacts.values()]:
        profile.artifact_paths(item.needs)
    # An artifact no study of this profile needs (e.g. one inherited from `mini` whose studies the
    # `paper` profile points elsewhere) is not part of this profile's DAG in either engine.
    used: set[str] = set()
    todo = [n for study in studies.values() for n in study.needs]
    while todo:
        n = todo.pop()
        if n not in used:
            used.add(n)
            todo.extend(artifacts[n].needs)
    return dataclasses.replace(profile, artifacts={n: a for n, a in artifacts.items() if n in used})


EXTENDS = "extends"


def resolve_extends(tree: dict[str, Any], where: str = "profile") -> dict[str, Any]:
    """Every mapping of ``tree`` holding ``extends: <dotted path>`` becomes the mapping at that path
    of ``tree`` (itself resolved) deep-merged with the mapping's own keys.

    This is params.yaml's inheritance between sections (``heads_ablation.base`` extends
    ``studies.heads.base``) instead of YAML anchors: ``dvc exp run -S`` rewrites params.yaml and
    expands anchors into copies, which silently ends the inheritance; an ``extends`` key survives.
    Paths are relative to the resolved profile (``studies.<s>.base...``, ``artifacts.<a>.config...``),
    so a profile that inherits from another resolves them against its own merged values.
    """

    def lookup(path: str, chain: frozenset[str]) -> dict[str, Any]:
        if path in chain:
            raise ConfigError(f"params.yaml {where}: `extends: {path}` loops back on itself; break the cycle")
        node: Any = tree
        walked = []
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                have = ", ".join(node) if isinstance(node, dict) else type(node).__name__
                raise ConfigError(
                    f"params.yaml {where}: `extends: {path}` names nothing: "
                    f"{'.'.join(walked) or 'the profile'} has no {part!r} (it has: {have}); fix the path"
                )
            walked.append(part)
            node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"params.yaml {where}: `extends: {path}` names a {type(node).__name__}, not a mapping")
        return resolve(node, path, chain | {path})

    def resolve(node: Any, at: str, chain: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [resolve(v, f"{at}[{i}]", chain) for i, v in enumerate(node)]
        if not isinstance(node, dict):
            return node
        own = {k: resolve(v, f"{at}.{k}" if at else k, chain) for k, v in node.items() if k != EXTENDS}
        if EXTENDS not in node:
            return own
        target = node[EXTENDS]
        if not isinstance(target, str):
            raise ConfigError(f"params.yaml {where}: {at}.extends must be a dotted path such as studies.heads.base")
        return deep_merge(lookup(target, chain | {at}), own)

    return resolve(tree, "", frozenset())


def resources(spec: dict[str, Any]) -> dict[str, Any]:
    """Snakemake resources of a study or artifact, with defaults (CPU job, 1 thread)."""
    return {
        "gpu": int(spec.get("gpu", 0)),
        "mem_mb": int(spec.get("mem_mb", 4000)),
        "runtime": int(spec.get("runtime_min", 30)),
        "threads": int(spec.get("threads", 1)),
    }


def slurm_partition(spec: dict[str, Any], partitions: dict[str, str]) -> str:
    """The SLURM partition of a job: ``partitions['gpu']`` if it asks for a GPU, else ``['cpu']``."""
    return partitions.get("gpu" if int(spec.get("gpu", 0)) else "cpu", "")
