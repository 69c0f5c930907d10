"""PlasticBrain: eyes -> N pluggable NeuromodulatedBlocks -> BatchNorm -> EpisodicMemoryBank.

The memory is the classifier: a prediction is the kNN vote of the stored representations nearest
to the query. The blocks shape that representation by local learning only, driven by a reward
that comes from the memory itself: after ``warmup_steps`` the reward of a sample is
``right_reward`` (+1) when the memory's prediction (made *before* the update) matched its label and
``wrong_reward`` (-0.2, a weak punishment) otherwise; during warm-up, while the memory is still
nearly empty and its votes mean little, and in ``panic`` mode, every sample is rewarded (+1).
The reward needs the label to score the memory's prediction, so it is self-generated but not
label-free.

The representation is normalized before the memory as the prototype does (``self.bn =
nn.BatchNorm1d(in_dim)`` in ``PlasticBrain``, eren23/plasticish_brain@8e9320b,
plasticish/models.py; its ``train_step`` rewards -0.2 and +1 in panic mode): during training with
the batch's statistics (which also update running statistics), at prediction time with the
running statistics. ``norm: layer`` (per-sample LayerNorm) is the alternative.

Each step: represent -> predict from memory (accuracy before the update) -> reward -> every
non-frozen block learns on its own input -> neurogenesis on the samples the memory got wrong
(every ``neurogenesis_every`` steps; every step in panic mode) -> the batch is re-represented with
the updated blocks and written to memory with its labels.

Blocks can be added, removed, replaced and frozen while the brain runs; each must map
``in_dim -> in_dim`` (the residual stream keeps the feature width).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from circadian_vision.plastic.block import MODES, BlockConfig, NeuromodulatedBlock
from circadian_vision.plastic.memory import EpisodicMemoryBank

NORMS = ("batch", "layer")


@dataclasses.dataclass
class PlasticBrainConfig:
    """Hyper-parameters of a :class:`PlasticBrain` (params.yaml ``plastic:``)."""

    num_layers: int = 2
    block: BlockConfig = dataclasses.field(default_factory=BlockConfig)
    memory_size: int = 60000  # the prototype's EpisodicMemoryBank default
    memory_k: int = 10
    memory_temperature: float = 0.1
    warmup_steps: int = 10
    right_reward: float = 1.0
    wrong_reward: float = -0.2  # the prototype's weak punishment
    norm: str = "batch"  # batch (the prototype's BatchNorm1d) | layer (per-sample LayerNorm)
    norm_momentum: float = 0.1  # batch: running-statistics momentum (torch's default)
    neurogenesis_every: int = 10  # plastic mode; 0 disables
    neurogenesis_max: int = 8  # neurons recycled per block per event
    panic_neurogenesis_every: int = 1


class PlasticBrain(nn.Module):
    """The multi-layer pluggable plastic brain (see the module docstring)."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        config: PlasticBrainConfig | None = None,
        *,
        eyes: nn.Module | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.config = cfg = config or PlasticBrainConfig()
        if cfg.num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {cfg.num_layers}")
        self.in_dim = int(in_dim)
        self.num_classes = int(num_classes)
        self.eyes = eyes
        self._gen = torch.Generator().manual_seed(seed)
        self.blocks = nn.ModuleList([self.new_block() for _ in range(cfg.num_layers)])
        if cfg.norm not in NORMS:
            raise ValueError(f"plastic brain: norm must be one of {', '.join(NORMS)}, got {cfg.norm!r}")
        self.register_buffer("running_mean", torch.zeros(self.in_dim))
        self.register_buffer("running_var", torch.ones(self.in_dim))
        self.memory = EpisodicMemoryBank(
            cfg.memory_size, self.in_dim, num_classes, k=cfg.memory_k, temperature=cfg.memory_temperature
        )
        self.steps = 0

    # ---- plugging blocks ----------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def new_block(self, **overrides: Any) -> NeuromodulatedBlock:
        """A fresh block with the brain's block config (``overrides`` replace fields of it)."""
        return NeuromodulatedBlock(self.in_dim, self.config.block, generator=self._gen, **overrides)

    def _check(self, block: nn.Module) -> nn.Module:
        if not isinstance(block, nn.Module):
            raise TypeError(f"a block must be an nn.Module, got {type(block).__name__}")
        dim = getattr(block, "in_dim", self.in_dim)
        if dim != self.in_dim:
            raise ValueError(f"block maps {dim} features but the brain's residual stream has {self.in_dim}")
        return block

    def _index(self, index: int) -> int:
        n = len(self.blocks)
        if not -n <= index < n:
            raise IndexError(f"block index {index} out of range for a brain with {n} block(s)")
        return index % n

    def add_block(self, block: nn.Module | None = None, index: int | None = None) -> nn.Module:
        """Insert ``block`` (default: a fresh one) at ``index`` (default: last); returns it."""
        block = self._check(block if block is not None else self.new_block())
        index = len(self.blocks) if index is None else index
        if not 0 <= index <= len(self.blocks):
            raise IndexError(f"cannot insert at {index}: the brain has {len(self.blocks)} block(s)")
        self.blocks.insert(index, block)
        return block

    def remove_block(self, index: int = -1) -> nn.Module:
        """Take block ``index`` out of the brain and return it."""
        i = self._index(index)
        block = self.blocks[i]
        del self.blocks[i]
        return block

    def replace_block(self, index: int, block: nn.Module | None = None) -> nn.Module:
        """Put ``block`` (default: a fresh one) in place of block ``index``; returns the old one."""
        i = self._index(index)
        old = self.blocks[i]
        self.blocks[i] = self._check(block if block is not None else self.new_block())
        return old

    def freeze_block(self, index: int, frozen: bool = True) -> None:
        """A frozen block keeps computing its forward pass but never learns or grows."""
        self.blocks[self._index(index)].frozen = frozen

    # ---- forward ------------------------------------------------------------------------------
    def see(self, images: Any) -> torch.Tensor:
        if self.eyes is None:
            raise RuntimeError("this brain has no eyes: pass features, or build it with eyes=PretrainedEyes(...)")
        return self.eyes.features(images)

    def normalize(self, h: torch.Tensor, *, training: bool = False, update: bool = False) -> torch.Tensor:
        """The normalization before the memory: batch statistics when ``training`` (``update``: also
        move the running statistics), else the running ones; or per-sample LayerNorm."""
        if self.config.norm == "layer":
            return F.layer_norm(h, (self.in_dim,))
        if training and len(h) > 1:
            return F.batch_norm(h, self.running_mean if update else None, self.running_var if update else None,
                                training=True, momentum=self.config.norm_momentum)
        return F.batch_norm(h, self.running_mean, self.running_var, training=False)

    @torch.no_grad()
    def represent(
        self, features: torch.Tensor, *, training: bool = False, update: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The memory key of ``features`` and the input each block saw."""
        h = features.float()
        inputs = []
        for block in self.blocks:
            inputs.append(h)
            h = block(h)
        return self.normalize(h, training=training, update=update), inputs

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Class log-probabilities from the memory's vote."""
        return self.memory(self.represent(features)[0])

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return self.memory.predict(self.represent(features)[0])

    def explain(self, features: torch.Tensor, k: int | None = None):
        """The stored memories behind each prediction (see :class:`~.memory.Neighbours`)."""
        return self.memory.neighbours(self.represent(features)[0], k)

    # ---- learning -----------------------------------------------------------------------------
    @torch.no_grad()
    def train_step(self, x: torch.Tensor, y: torch.Tensor, mode: str = "plastic") -> dict[str, float]:
        """One online step on a batch of features ``x`` and labels ``y``; returns its statistics."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        cfg = self.config
        y = y.long().to(x.device)
        z, inputs = self.represent(x, training=True)
        pred = self.memory.predict(z).to(y.device)
        correct = pred == y
        warm = self.steps < cfg.warmup_steps
        if warm or mode == "panic":
            reward = torch.ones(len(y), device=x.device)
        else:
            reward = torch.where(correct, cfg.right_reward, cfg.wrong_reward).float()
        active = []
        for block, h in zip(self.blocks, inputs):
            if isinstance(block, NeuromodulatedBlock):
                active.append(block.learn(h, reward, mode)["active_fraction"])
        every = cfg.panic_neurogenesis_every if mode == "panic" else cfg.neurogenesis_every
        births = 0
        wrong = ~correct
        if not warm and every > 0 and self.steps % every == 0 and bool(wrong.any()):
            for block, h in zip(self.blocks, inputs):
                if isinstance(block, NeuromodulatedBlock):
                    births += len(block.neurogenesis(h[wrong], cfg.neurogenesis_max))
        z_new, _ = self.represent(x, training=True, update=True)
        self.memory.write(z_new, y)
        self.steps += 1
        return {
            "acc_before": float(correct.float().mean()),
            "reward": float(reward.mean()),
            "births": float(births),
            "active_fraction": float(sum(active) / len(active)) if active else float("nan"),
        }

    def end_phase(self, consolidate: bool) -> dict[str, float]:
        """Consolidate every block (mark its useful neurons mature) when ``consolidate``."""
        newly = 0
        if consolidate:
            for block in self.blocks:
                if isinstance(block, NeuromodulatedBlock):
                    newly += block.consolidate()
        return {"newly_mature": float(newly)}

    # ---- inspection ---------------------------------------------------------------------------
    def sparsity(self) -> float:
        """Fraction of hidden units active per input, averaged over the blocks."""
        fr = [b.k / b.hidden_dim for b in self.blocks if isinstance(b, NeuromodulatedBlock)]
        return float(sum(fr) / len(fr)) if fr else float("nan")

    def step_stats(self) -> dict[str, float]:
        out = {"memory_fill": self.memory.fill_fraction}
        for i, block in enumerate(self.blocks):
            if isinstance(block, NeuromodulatedBlock):
                for key, value in block.stats().items():
                    out[f"layer{i}.{key}"] = value
        return out

    def core_snapshot(self) -> list[tuple[NeuromodulatedBlock, torch.Tensor, torch.Tensor]]:
        """The encoder rows of the neurons mature now (for :meth:`core_drift`)."""
        snap = []
        for block in self.blocks:
            if isinstance(block, NeuromodulatedBlock):
                idx = block.mature.nonzero().flatten()
                snap.append((block, idx, block.w_enc[idx].clone()))
        return snap

    def core_drift(self, snapshot: list[tuple[NeuromodulatedBlock, torch.Tensor, torch.Tensor]]) -> float:
        """Relative change ||W - W0|| / ||W0|| of the snapshot's mature encoder rows (NaN if none)."""
        num, den = 0.0, 0.0
        for block, idx, rows in snapshot:
            if len(idx) == 0:
                continue
            num += float((block.w_enc[idx] - rows).pow(2).sum())
            den += float(rows.pow(2).sum())
        return (num / den) ** 0.5 if den > 0 else float("nan")
