"""Study ``plastic``: the plastic brain family on a three-phase curriculum, against a naive linear head.

Curriculum (the prototype's): phase 1 trains on a first class group ("animals" on CIFAR-10;
digits 0-4 in ``mini``), phase 2 on a second group ("vehicles"; digits 5-9), phase 3, the *storm*,
on colour-inverted images (``255 - x`` on CIFAR, ``1 - x`` on digits). Every phase trains on
TRAINING images only and every accuracy is measured on held-out TEST images; the storm is scored
on inverted test images. (The prototype scored its storm on the very images it had just trained
on; ``storm_train``, the accuracy on the inverted training images after the storm, is recorded
too, to show how much that flatters.)

One DAG cell = one (model, seed): ``model`` names a learner of the registry :data:`LEARNERS`
(``plastic_brain``, ``triarchic``, ``naive_linear``); all see the same features from the same
frozen eyes, in the same batches.
The eyes are the ``digits_cnn`` artifact in ``mini`` (a small CNN trained in-pipeline on the first
Split-Digits task's TRAINING images, then frozen), ResNet-18 with ImageNet weights in ``paper``
(through the feature artifact built by :func:`build_features`), or a seeded random projection
(``random_projection``, a stand-in that needs nothing).

Metrics (flat, per run; :data:`CONTRACT`): accuracy on each group's test set after each phase,
retention of phase-1 accuracy (after / after phase 1; the headline is after phase 2, because the
storm re-teaches the phase-1 classes when ``storm_classes`` is ``all``), the same read through the
triarchic brain's core pathway alone (the prototype's "Memory (Core)"), adaptation speed (steps
until the accuracy measured before each update reaches 80% of the phase's final level), fraction
of active units, context energy during the storm and its ratio to before, core drift over each
phase, and ACC / BWT / forgetting of the 3 x 3 accuracy matrix (phase x eval set). A metric a
learner has no such quantity for (context energy of a linear head) is null.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circadian_core.config import ConfigError, from_dict
from circadian_core.contract import Contract, Metric
from circadian_core.datasets import ArrayDataset, load_dataset
from circadian_core.metrics import accuracy_matrix_summary
from circadian_core.record import StudyResult
from circadian_core.runner import require_artifact
from circadian_vision.plastic.baseline import NaiveLinearConfig, NaiveLinearHead
from circadian_vision.plastic.brain import PlasticBrain, PlasticBrainConfig
from circadian_vision.plastic.eyes import PretrainedEyes, RandomProjectionEyes
from circadian_vision.plastic.trainer import PhaseConfig, PlasticTrainer
from circadian_vision.plastic.triarchic import TriarchicBrain, TriarchicConfig

PHASES = ("phase1", "phase2", "storm")
EVAL_SETS = ("phase1", "phase2", "storm", "storm_train")
FEATURES_FORMAT = "circadian_vision.plastic_features/1"


@dataclasses.dataclass(frozen=True)
class LearnerSpec:
    """A registry entry: the learner class and the study-config field holding its config."""

    cls: type
    config_field: str


# name -> learner (like NETS and HEADS): a new learner is one entry here and one config field
LEARNERS: dict[str, LearnerSpec] = {
    "plastic_brain": LearnerSpec(PlasticBrain, "plastic"),
    "triarchic": LearnerSpec(TriarchicBrain, "triarchic"),
    "naive_linear": LearnerSpec(NaiveLinearHead, "naive"),
}
MODELS = tuple(LEARNERS)


@dataclasses.dataclass
class DataConfig:
    """The image dataset and the two class groups (``dataset`` is passed to ``load_dataset``)."""

    dataset: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "digits"})
    groups: list[list[int]] = dataclasses.field(default_factory=lambda: [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    group_names: list[str] = dataclasses.field(default_factory=lambda: ["digits 0-4", "digits 5-9"])
    storm_classes: str = "all"  # all | first | second: whose inverted images the storm uses


@dataclasses.dataclass
class EyesConfig:
    kind: str = "digits_cnn"  # digits_cnn (an artifact) | resnet18 | random_projection
    artifact: str = "digits_cnn"  # the artifact name when kind is digits_cnn
    weights: str = "imagenet"  # resnet18
    image_size: int | None = 224  # resnet18: inputs resized to this
    feature_dim: int = 64  # random_projection
    batch_size: int = 256


@dataclasses.dataclass
class CurriculumConfig:
    steps: list[int] = dataclasses.field(default_factory=lambda: [60, 60, 60])  # per phase
    batch_size: int = 16
    modes: list[str] = dataclasses.field(default_factory=lambda: ["plastic", "plastic", "panic"])
    consolidate_after: list[bool] = dataclasses.field(default_factory=lambda: [True, True, False])
    eval_every: int = 10  # held-out evaluation every this many steps (0: phase ends only)
    adaptation_fraction: float = 0.8
    adaptation_window: int = 10


@dataclasses.dataclass
class PlasticStudyConfig:
    model: str = "plastic_brain"
    features: str | None = None  # a feature artifact from build_features (else eyes run in the cell)
    center: str = "phase1"  # none | phase1: subtract the mean feature of phase 1's training images
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    eyes: EyesConfig = dataclasses.field(default_factory=EyesConfig)
    curriculum: CurriculumConfig = dataclasses.field(default_factory=CurriculumConfig)
    plastic: PlasticBrainConfig = dataclasses.field(default_factory=PlasticBrainConfig)
    triarchic: TriarchicConfig = dataclasses.field(default_factory=TriarchicConfig)
    naive: NaiveLinearConfig = dataclasses.field(default_factory=NaiveLinearConfig)


# ---------------------------------------------------------------------------------------------
# data: features of clean and inverted images, and the curriculum built from them
# ---------------------------------------------------------------------------------------------
def invert(images: np.ndarray) -> np.ndarray:
    """Colour inversion: ``255 - x`` for uint8 images, ``1 - x`` for floats in [0, 1]."""
    if images.dtype == np.uint8:
        return 255 - images
    return (1.0 - images).astype(images.dtype)


@dataclasses.dataclass
class FeatureBank:
    """Frozen-eyes features of every train and test image, clean and colour-inverted."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_train_inv: torch.Tensor
    x_test_inv: torch.Tensor
    classes: list[str]
    eyes: dict[str, Any]
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def feature_dim(self) -> int:
        return int(self.x_train.shape[1])


def make_eyes(cfg: EyesConfig, artifacts: dict[str, Path] | None, device: str) -> Any:
    artifacts = artifacts or {}
    if cfg.kind == "digits_cnn":
        return PretrainedEyes.from_file(require_artifact(artifacts, cfg.artifact, study="plastic", key="eyes.artifact"),
                                        device=device)
    if cfg.kind == "resnet18":
        return PretrainedEyes.resnet18(cfg.weights, image_size=cfg.image_size, device=device)
    if cfg.kind == "random_projection":
        return RandomProjectionEyes(feature_dim=cfg.feature_dim, seed=0)
    raise ConfigError(f"plastic: unknown eyes kind {cfg.kind!r}; use digits_cnn, resnet18 or random_projection")


def compute_features(data: ArrayDataset, eyes: Any, batch_size: int = 256) -> FeatureBank:
    """Run the frozen ``eyes`` once over the clean and inverted train and test images."""
    t0 = time.perf_counter()

    def feats(images: np.ndarray) -> torch.Tensor:
        return eyes.features(images, batch_size=batch_size).float().cpu()

    bank = FeatureBank(
        x_train=feats(data.x_train),
        y_train=torch.as_tensor(np.asarray(data.y_train), dtype=torch.long),
        x_test=feats(data.x_test),
        y_test=torch.as_tensor(np.asarray(data.y_test), dtype=torch.long),
        x_train_inv=feats(invert(data.x_train)),
        x_test_inv=feats(invert(data.x_test)),
        classes=list(data.classes),
        eyes=eyes.identity(),
    )
    bank.info = {"features_s": time.perf_counter() - t0, "n_train": len(bank.y_train), "n_test": len(bank.y_test)}
    return bank


def load_images(cfg: DataConfig) -> ArrayDataset:
    kwargs = dict(cfg.dataset)
    name = kwargs.pop("name", None)
    if not name:
        raise ConfigError("plastic: data.dataset needs a name registered in circadian_core.datasets (digits, cifar10, ...)")
    data = load_dataset(name, **kwargs)
    if not isinstance(data, ArrayDataset):
        raise ConfigError(f"plastic: dataset {name!r} is a task sequence; use a train/test dataset (digits, cifar10, ...)")
    return data


@dataclasses.dataclass
class FeatureArtifactConfig:
    """Config of a :func:`build_features` artifact: which images, which eyes."""

    dataset: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "digits"})
    eyes: EyesConfig = dataclasses.field(default_factory=EyesConfig)


def build_features(config: dict[str, Any], *, out: Path, device: str = "cpu", artifacts: dict[str, Path] | None = None) -> None:
    """Pipeline artifact entry: the :class:`FeatureBank` (clean + inverted, train + test) saved to ``out``.

    The eyes are frozen, so their features are computed once and every (model, seed) cell loads them.
    """
    cfg = from_dict(FeatureArtifactConfig, config, where="plastic features artifact")
    data = load_images(DataConfig(dataset=cfg.dataset))
    bank = compute_features(data, make_eyes(cfg.eyes, artifacts, device), cfg.eyes.batch_size)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FEATURES_FORMAT, "dataset": cfg.dataset, **dataclasses.asdict(bank)}, out)
    print(f"plastic features: train {tuple(bank.x_train.shape)}, test {tuple(bank.x_test.shape)} ({bank.info['features_s']:.1f}s)")


def load_feature_bank(path: Path, dataset: dict[str, Any]) -> FeatureBank:
    if not Path(path).exists():
        raise FileNotFoundError(f"feature artifact {path} not found; build it with `python -m pipelines.scripts.build_artifact` (or dvc repro)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FEATURES_FORMAT:
        raise ValueError(f"{path} is not a {FEATURES_FORMAT} file; delete it and rebuild the artifact")
    if blob.pop("dataset") != dataset:
        raise ValueError(f"{path} was computed for another dataset spec than {dataset}; rebuild it")
    blob.pop("format")
    return FeatureBank(**blob)


@dataclasses.dataclass
class SetSpec:
    """Where a set of the curriculum comes from: split, row indices into it, inverted or not."""

    split: str  # train | test
    indices: torch.Tensor
    inverted: bool

    def take(self, bank: FeatureBank) -> tuple[torch.Tensor, torch.Tensor]:
        x = {("train", False): bank.x_train, ("train", True): bank.x_train_inv,
             ("test", False): bank.x_test, ("test", True): bank.x_test_inv}[(self.split, self.inverted)]
        y = bank.y_train if self.split == "train" else bank.y_test
        return x[self.indices], y[self.indices]


@dataclasses.dataclass
class Curriculum:
    """The three training phases and the held-out eval sets, each with its provenance."""

    train: dict[str, SetSpec]  # phase name -> its training set
    eval: dict[str, SetSpec]  # eval set name -> its images

    def describe(self) -> dict[str, Any]:
        def one(s: SetSpec) -> dict[str, Any]:
            return {"split": s.split, "inverted": s.inverted, "n": len(s.indices)}

        return {"train": {k: one(v) for k, v in self.train.items()}, "eval": {k: one(v) for k, v in self.eval.items()}}


def build_curriculum(bank: FeatureBank, cfg: DataConfig) -> Curriculum:
    """Phases phase1 / phase2 / storm on TRAINING rows; eval sets on TEST rows (``storm_train`` aside).

    Eval sets: ``phase1`` and ``phase2`` (clean test images of each group), ``storm`` (inverted
    test images of the storm classes) and ``storm_train`` (the inverted *training* images the storm
    trained on: the prototype's flawed score, kept only to measure the gap).
    """
    if len(cfg.groups) != 2:
        raise ConfigError(f"plastic: data.groups needs two class groups, got {len(cfg.groups)}")
    first, second = (set(g) for g in cfg.groups)
    if not first or not second or first & second:
        raise ConfigError(f"plastic: data.groups must be two non-empty disjoint class lists, got {cfg.groups}")
    n_classes = len(bank.classes)
    if max(first | second) >= n_classes or min(first | second) < 0:
        raise ConfigError(f"plastic: data.groups use classes outside 0..{n_classes - 1}")
    storm = {"all": first | second, "first": first, "second": second}.get(cfg.storm_classes)
    if storm is None:
        raise ConfigError(f"plastic: data.storm_classes must be all, first or second, got {cfg.storm_classes!r}")

    def rows(y: torch.Tensor, classes: set[int]) -> torch.Tensor:
        return torch.isin(y, torch.tensor(sorted(classes))).nonzero().flatten()

    return Curriculum(
        train={
            "phase1": SetSpec("train", rows(bank.y_train, first), False),
            "phase2": SetSpec("train", rows(bank.y_train, second), False),
            "storm": SetSpec("train", rows(bank.y_train, storm), True),
        },
        eval={
            "phase1": SetSpec("test", rows(bank.y_test, first), False),
            "phase2": SetSpec("test", rows(bank.y_test, second), False),
            "storm": SetSpec("test", rows(bank.y_test, storm), True),
            "storm_train": SetSpec("train", rows(bank.y_train, storm), True),
        },
    )


def center_features(bank: FeatureBank, curriculum: Curriculum, how: str) -> FeatureBank:
    """Subtract a fixed mean feature from every feature (``how="phase1"``: phase 1's training mean).

    Post-ReLU features of a frozen CNN share a large common component (all inputs lie in a narrow
    cone), which makes cosine similarity and k-WTA codes nearly input-independent. The mean of the
    first phase's training features is known before anything else is learned, so subtracting it is
    a calibration of the eyes, not a peek at later data. Every model gets the same features.
    """
    if how == "none":
        return bank
    if how != "phase1":
        raise ConfigError(f"plastic: center must be none or phase1, got {how!r}")
    mu = curriculum.train["phase1"].take(bank)[0].mean(0, keepdim=True)
    return dataclasses.replace(
        bank,
        x_train=bank.x_train - mu,
        x_test=bank.x_test - mu,
        x_train_inv=bank.x_train_inv - mu,
        x_test_inv=bank.x_test_inv - mu,
        info={**bank.info, "centered_on": "phase1"},
    )


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
def make_learner(cfg: PlasticStudyConfig, in_dim: int, num_classes: int, seed: int) -> Any:
    """The learner ``cfg.model`` names in :data:`LEARNERS`, built with its config field of ``cfg``."""
    spec = LEARNERS.get(cfg.model)
    if spec is None:
        raise ConfigError(f"plastic: unknown model {cfg.model!r}; use one of {', '.join(LEARNERS)}")
    return spec.cls(in_dim, num_classes, getattr(cfg, spec.config_field), seed=seed)


def run_curriculum(bank: FeatureBank, cfg: PlasticStudyConfig, *, seed: int, device: str = "cpu") -> tuple[Any, Any, Curriculum]:
    """Build the curriculum and the learner, train it through the three phases; (history, learner, curriculum)."""
    cur = cfg.curriculum
    for key in ("steps", "modes", "consolidate_after"):
        if len(getattr(cur, key)) != len(PHASES):
            raise ConfigError(f"plastic: curriculum.{key} needs one entry per phase ({', '.join(PHASES)})")
    curriculum = build_curriculum(bank, cfg.data)
    bank = center_features(bank, curriculum, cfg.center)
    learner = make_learner(cfg, bank.feature_dim, len(bank.classes), seed).to(device)
    phases = [
        PhaseConfig(
            name=name,
            data=curriculum.train[name].take(bank),
            steps=cur.steps[i],
            batch_size=cur.batch_size,
            mode=cur.modes[i],
            consolidate_after=cur.consolidate_after[i],
        )
        for i, name in enumerate(PHASES)
    ]
    evals = {name: spec.take(bank) for name, spec in curriculum.eval.items()}
    trainer = PlasticTrainer(
        learner, phases, evals, eval_every=cur.eval_every, periodic_sets=list(PHASES), seed=seed, device=device
    )
    return trainer.train(), learner, curriculum


def _finite(value: float) -> float | None:
    """A metric value, or None (declared "not applicable") where the learner has no such quantity."""
    value = float(value)
    return value if np.isfinite(value) else None


def summarize(history: Any, learner: Any, cfg: PlasticStudyConfig) -> dict[str, float | None]:
    """The run's flat metrics (see the module docstring and :data:`CONTRACT`)."""
    m: dict[str, float | None] = {}
    for phase in PHASES:
        ends = history.phase_end(phase)
        for s in EVAL_SETS:
            m[f"acc.{s}.after_{phase}"] = float(ends[s])
            m[f"acc.{s}@core.after_{phase}"] = _finite(ends[f"{s}@core"]) if f"{s}@core" in ends else None
        births = [r.get("births") or 0.0 for r in history.steps if r["phase"] == phase]
        m[f"births.{phase}"] = float(sum(births))
        m[f"adapt_steps.{phase}"] = _finite(history.adaptation_steps(
            phase, cfg.curriculum.adaptation_fraction, cfg.curriculum.adaptation_window))
        m[f"core_drift.{phase}"] = _finite(next(p["core_drift"] for p in history.phases if p["name"] == phase))
    ret = history.retention("phase1", "phase1")
    m["retention.after_phase2"] = _finite(ret["phase2"])
    m["retention.after_storm"] = _finite(ret["storm"])
    if m["acc.phase1@core.after_phase1"] is not None:
        core = history.retention("phase1@core", "phase1")
        m["retention_core.after_phase2"], m["retention_core.after_storm"] = _finite(core["phase2"]), _finite(core["storm"])
    else:
        m["retention_core.after_phase2"] = m["retention_core.after_storm"] = None
    m["storm_gap"] = float(m["acc.storm_train.after_storm"] - m["acc.storm.after_storm"])  # type: ignore[operator]
    m["sparsity"] = _finite(learner.sparsity())
    energy = [history.phase_mean(p, "context_energy") for p in PHASES]
    m["context_energy.storm"] = _finite(energy[2])
    before = float(np.nanmean(energy[:2])) if not all(np.isnan(energy[:2])) else float("nan")
    m["context_energy.spike"] = _finite(energy[2] / before) if before and not np.isnan(before) else None
    R = [[history.accuracy(p, s) for s in PHASES] for p in PHASES]
    for key, value in accuracy_matrix_summary(np.array(R)).items():
        m[f"cl.{key}"] = float(value)
    return m


def _metrics() -> tuple[Metric, ...]:
    out = []
    for phase in PHASES:
        for s in EVAL_SETS:
            what = {"phase1": "first group's clean test images", "phase2": "second group's clean test images",
                    "storm": "inverted test images of the storm classes",
                    "storm_train": "inverted TRAINING images the storm trained on (the prototype's flawed score)"}[s]
            out.append(Metric(f"acc.{s}.after_{phase}", f"accuracy on the {what} after {phase}", "accuracy",
                              higher_is_better=True))
            out.append(Metric(f"acc.{s}@core.after_{phase}", "the same through the core pathway alone (triarchic; "
                              "null for the others)", "accuracy", higher_is_better=True, nullable=True))
        out.append(Metric(f"births.{phase}", f"neurons born (recycled) during {phase}", "count"))
        out.append(Metric(f"adapt_steps.{phase}", f"steps into {phase} until the prequential accuracy reaches 80% of "
                          "its final level (null: final level 0)", "steps", higher_is_better=False, nullable=True))
        out.append(Metric(f"core_drift.{phase}", f"relative change of the core weights over {phase} (null: no core "
                          "yet)", "ratio", nullable=True))
    for when in ("after_phase2", "after_storm"):
        out.append(Metric(f"retention.{when}", f"phase-1 accuracy {when.replace('_', ' ')} / after phase 1 (null: "
                          "0 after phase 1)", "ratio", higher_is_better=True, nullable=True))
        out.append(Metric(f"retention_core.{when}", "the same through the core pathway alone (triarchic; null for "
                          "the others)", "ratio", higher_is_better=True, nullable=True))
    out += [
        Metric("storm_gap", "storm accuracy on the trained-on images minus on held-out ones", "accuracy"),
        Metric("sparsity", "fraction of hidden units active per input (null: no hidden units)", "fraction", nullable=True),
        Metric("context_energy.storm", "mean context energy during the storm (null: no context)", "norm", nullable=True),
        Metric("context_energy.spike", "context energy in the storm over its mean before (null: no context)", "ratio",
               nullable=True),
        Metric("cl.acc", "ACC of the 3x3 accuracy matrix (phase x eval set)", "accuracy", higher_is_better=True),
        Metric("cl.bwt", "backward transfer of the 3x3 accuracy matrix", "accuracy", higher_is_better=True),
        Metric("cl.forgetting", "forgetting of the 3x3 accuracy matrix (Chaudhry et al. 2018)", "accuracy",
               higher_is_better=False),
    ]
    return tuple(out)


@dataclasses.dataclass
class PlasticInfo:
    """``info`` of a plastic record."""

    evals: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # every held-out evaluation
    phases: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # per phase: steps, drift, eval, ...
    curriculum: dict[str, Any] = dataclasses.field(default_factory=dict)  # where each set comes from, sizes
    group_names: list[str] = dataclasses.field(default_factory=list)
    eyes: dict[str, Any] = dataclasses.field(default_factory=dict)
    feature_dim: int = 0
    stream: int = 0  # training samples in the whole curriculum (steps x batch size)


CONTRACT = Contract(
    "plastic",
    version=2,
    settings=PlasticStudyConfig,
    info=PlasticInfo,
    description="The plastic-brain family on a three-phase curriculum (group 1 -> group 2 -> storm).",
    metrics=_metrics(),
)


def run(
    config: dict[str, Any],
    *,
    seed: int,
    device: str = "cpu",
    workdir: Path | None = None,
    artifacts: dict[str, Path] | None = None,
) -> StudyResult:
    cfg = from_dict(PlasticStudyConfig, config, where="plastic")
    if cfg.model not in LEARNERS:
        raise ConfigError(f"plastic: unknown model {cfg.model!r}; use one of {', '.join(LEARNERS)}")
    artifacts = artifacts or {}
    t0 = time.perf_counter()
    if cfg.features is not None:
        path = require_artifact(artifacts, cfg.features, study="plastic", key="features")
        bank = load_feature_bank(path, cfg.data.dataset)
    else:
        bank = compute_features(load_images(cfg.data), make_eyes(cfg.eyes, artifacts, device), cfg.eyes.batch_size)
    features_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    history, learner, curriculum = run_curriculum(bank, cfg, seed=seed, device=device)
    train_s = time.perf_counter() - t1
    metrics = summarize(history, learner, cfg)
    hist = history.to_dict()
    info = PlasticInfo(evals=hist["evals"], phases=hist["phases"], curriculum=curriculum.describe(),
                       group_names=list(cfg.data.group_names), eyes=bank.eyes, feature_dim=bank.feature_dim,
                       stream=int(sum(cfg.curriculum.steps) * cfg.curriculum.batch_size))
    return StudyResult(metrics=metrics, history=hist["steps"], info=dataclasses.asdict(info),
                       timings={"features_s": features_s, "train_s": train_s})
