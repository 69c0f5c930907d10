"""What one night records: a typed :class:`NightRecord` and its sub-records.

The night's phases fill a ``NightRecord``; it is written to ``nights/night-NNN/night.json`` and
appended to ``experiments.jsonl`` as JSON (:meth:`NightRecord.to_json`), and read back with
:meth:`NightRecord.from_json` (strict: an unknown key is an error naming it). The study function
and the report read nights only through these types.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from circadia.backends.base import TrainReport
from circadia.config import NightConfig
from circadia.quarantine import QuarantinedTurn
from circadian_core.config import from_dict


class NightStatus(str, enum.Enum):
    """How a night ended. ``decided`` nights (accepted, rolled back) count as nights slept."""

    ACCEPTED = "accepted"  # the new adapter is current
    ROLLED_BACK = "rolled_back"  # the morning kept yesterday's adapter
    ABORTED_NAN = "aborted_nan"  # a non-finite loss stopped training; nothing written, memories wait
    SKIPPED = "skipped"  # nothing new to learn

    @property
    def decided(self) -> bool:
        return self in (NightStatus.ACCEPTED, NightStatus.ROLLED_BACK)


@dataclass
class EvalSummary:
    """One evaluation of the model in memory (before or after training)."""

    heldout_loss: float | None  # mean NLL per assistant token on held-out chats (None: none yet)
    n_heldout: int
    old_core_loss: float | None  # the same on the old-core eval split (forgetting)
    harness: float | None  # capability harness pass rate
    harness_per_category: dict[str, float] = field(default_factory=dict)
    cached: bool = False  # harness and old-core loss taken from the cache (model unchanged)


@dataclass
class MemoriesSummary:
    total: int  # valid turns in memories.jsonl
    new: int  # turns since the last decided night
    train: int  # new turns that are not held out
    heldout_total: int  # held-out turns over the whole log
    corrupt_lines: list[str] = field(default_factory=list)
    quarantine: str = ""


@dataclass
class RouterSummary:
    turns: int  # new turns routed
    to_store: int  # stored verbatim for retrieval (they also train LoRA)
    to_lora: int  # trained on (every turn that is not held out)
    reasons: dict[str, int] = field(default_factory=dict)  # router reasons (code, url, json, long, numeric, ...) by count
    secrets_redacted: int = 0
    quarantined: int = 0  # turns routing could not handle (left out of everything)


@dataclass
class DreamSummary:
    attempts: int
    valid: int
    invalid: int
    invalid_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def valid_rate(self) -> float | None:
        return self.valid / self.attempts if self.attempts else None


@dataclass
class MixSummary:
    """The night's training examples by source, and the realised replay share."""

    n_memory: int = 0
    n_dream: int = 0
    n_replay: int = 0
    n_total: int = 0
    replay_fraction: float = 0.0

    @classmethod
    def of(cls, summary: dict[str, Any]) -> MixSummary:
        """From :func:`circadia.sleep.batches.mix_summary`."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in summary.items() if k in names})


@dataclass
class TrainSummary:
    """:class:`~circadia.backends.base.TrainReport` as recorded (seconds and tokens/s are timings)."""

    losses: list[float]
    tokens: int
    aborted_nan: bool
    weights_finite: bool = True
    lrs: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    adapter_dir: str | None = None
    seconds: float = 0.0
    tokens_per_s: float | None = None

    @classmethod
    def of(cls, report: TrainReport) -> TrainSummary:
        tps = report.tokens_per_s
        return cls(losses=list(report.losses), tokens=report.tokens, aborted_nan=report.aborted_nan,
                   weights_finite=report.weights_finite, lrs=list(report.lrs), grad_norms=list(report.grad_norms),
                   adapter_dir=report.adapter_dir, seconds=report.seconds, tokens_per_s=tps if tps == tps else None)


@dataclass
class Recall:
    recall: float | None  # share found among the top k (None: nothing to ask)
    n: int


@dataclass
class RecallSummary:
    probes: Recall  # fact probes of the days seen so far
    stored_tonight: Recall  # tonight's stored turns, queried by their user text
    store_size: int
    store_kind: str


@dataclass
class ImportSummary:
    """A simulated day's log imported before the night (``circadia nights``)."""

    file: str
    turns: int
    corrupt_lines: int


@dataclass
class PhaseTimings:
    """Seconds per phase of the night (timings: never metrics)."""

    read_route: float = 0.0
    store: float = 0.0
    load: float = 0.0
    pre_eval: float = 0.0
    dream: float = 0.0
    train: float = 0.0
    post_eval: float = 0.0
    morning: float = 0.0
    recall: float = 0.0
    total: float = 0.0


@dataclass
class NightRecord:
    """Everything one night did and measured (``experiments.jsonl`` holds one per night attempt)."""

    night: int
    attempt: int  # 1-based count of night attempts in this home (aborted ones included)
    tag: str
    started: str
    seed: int
    config: NightConfig
    status: NightStatus | None = None  # None only while the night runs
    reason: str | None = None
    memories: MemoriesSummary | None = None
    router: RouterSummary | None = None
    base_model: str | None = None
    previous_adapter: str | None = None
    pre: EvalSummary | None = None
    dreams: DreamSummary | None = None
    mix: MixSummary | None = None
    train: TrainSummary | None = None
    post: EvalSummary | None = None
    rollback_reasons: list[str] = field(default_factory=list)
    would_roll_back: bool = False  # the capability checks fired (with rollback disabled: accepted anyway)
    adapter: str | None = None  # current adapter after the night (relative to the home)
    merged_base: str | None = None
    recall: RecallSummary | None = None
    quarantined: list[QuarantinedTurn] = field(default_factory=list)  # poison turns left out (which, where, why)
    imported: ImportSummary | None = None
    timings: PhaseTimings = field(default_factory=PhaseTimings)

    def __post_init__(self) -> None:
        if self.status is not None and not isinstance(self.status, NightStatus):
            self.status = NightStatus(self.status)

    @property
    def in_use(self) -> EvalSummary | None:
        """The evaluation of the model in use after the night: post if accepted, else pre."""
        return self.post if self.status is NightStatus.ACCEPTED else self.pre

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["status"] = None if self.status is None else self.status.value
        out["config"] = self.config.to_json()
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, where: str = "night record") -> NightRecord:
        return from_dict(cls, obj, where=where)

    def row(self) -> dict[str, Any]:
        """One flat row per night (the study's history)."""
        pre, post, use = self.pre, self.post, self.in_use
        losses = self.train.losses if self.train else []
        row: dict[str, Any] = {
            "night": self.night,
            "status": self.status.value if self.status else None,
            "heldout_pre": pre.heldout_loss if pre else None,
            "heldout_post": post.heldout_loss if post else None,
            "heldout_in_use": use.heldout_loss if use else None,
            "harness_pre": pre.harness if pre else None,
            "harness_post": post.harness if post else None,
            "harness_in_use": use.harness if use else None,
            "old_core_pre": pre.old_core_loss if pre else None,
            "old_core_post": post.old_core_loss if post else None,
            "old_core_in_use": use.old_core_loss if use else None,
            "fact_recall": self.recall.probes.recall if self.recall else None,
            "dreams_valid": self.dreams.valid if self.dreams else 0,
            "dreams_attempts": self.dreams.attempts if self.dreams else 0,
            "train_loss_first": losses[0] if losses else None,
            "train_loss_last": losses[-1] if losses else None,
        }
        for cat, v in ((use.harness_per_category if use else None) or {}).items():
            row[f"harness_in_use_{cat}"] = v
        return row
