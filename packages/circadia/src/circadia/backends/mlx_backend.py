"""The MLX backend: LoRA training, loss, generation and fusing with mlx-lm (Apple Silicon, or mlx[cpu]).

This module imports mlx; the backend registry (:mod:`circadia.backends.base`) imports it only when
the ``"mlx"`` backend is asked for, so circadia runs without mlx installed.

Shared with the torch backend so that both see and compute the same thing: batches of
:class:`~circadia.backends.base.Example` are tokenized and padded by ``base.collate`` (right padding:
mlx-lm models take no padding mask, and with causal attention right padding cannot change the real
tokens' logits); the loss is the mean NLL per assistant token over the whole batch; the learning rate
is ``base.lr_at``; LoRA ``lora_alpha``/``lora_rank`` mean what they mean in peft (mlx-lm's
``scale`` = alpha / rank); AdamW is torch's (bias-corrected, decoupled weight decay); gradients are
clipped by global norm; a non-finite loss or gradient stops training with ``aborted_nan`` and no
adapter is written. LoRA B starts at zero as in peft, so the first step's loss is the base model's.

Adapters are written in mlx-lm's format (``adapters.safetensors`` + ``adapter_config.json``);
:meth:`MLXBackend.load` and :meth:`MLXBackend.merge` also take peft adapters, converted on the fly by
:mod:`circadia.adapters_convert`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from circadia.backends.mlx_blas import prefer_openblas

prefer_openblas()  # before mlx.core loads: mlx[cpu] on Linux otherwise runs on reference BLAS

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
import mlx.optimizers as optim  # noqa: E402
import numpy as np  # noqa: E402
from mlx.utils import tree_flatten, tree_map  # noqa: E402

from circadia import adapters_convert  # noqa: E402
from circadia.backends.base import (  # noqa: E402
    EVAL_MAX_LEN,
    Example,
    TrainConfig,
    TrainReport,
    collate,
    lr_at,
    masked_nll_reduction,
    pad_id_of,
    validate_messages,
)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapters.safetensors"
COMPILE_PAD_MULTIPLE = 32  # batch widths are bucketed to this when the training step is compiled


def mlx_config_overrides(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Config keys mlx-lm needs at the top level of config.json but transformers 5 nests.

    transformers 5 writes ``rope_theta`` (and any RoPE scaling) under ``rope_parameters``; mlx-lm
    reads only the top-level ``rope_theta``/``rope_scaling`` and otherwise silently uses 10000 with
    no scaling (SmolLM2 uses 100000: its logits then differ by ~10). Returns the keys to pass as
    ``mlx_lm.load(..., model_config=...)``; empty when the folder already has them.
    """
    config = json.loads((Path(model_dir) / "config.json").read_text())
    rope = config.get("rope_parameters")
    overrides: dict[str, Any] = {}
    if isinstance(rope, dict):
        if "rope_theta" not in config and "rope_theta" in rope:
            overrides["rope_theta"] = float(rope["rope_theta"])
        if config.get("rope_scaling") is None and rope.get("rope_type", "default") != "default":
            overrides["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    return overrides


def load_mlx(model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None = None):
    """Load an HF folder (and optionally an mlx-lm adapter) with mlx-lm, RoPE keys fixed."""
    from mlx_lm import load

    return load(
        str(model_dir),
        model_config=mlx_config_overrides(model_dir),
        adapter_path=None if adapter_dir is None else str(adapter_dir),
    )


def lora_keys(model: nn.Module, target_modules: list[str] | None) -> list[str]:
    """mlx-lm ``keys`` (module paths inside one block) for peft-style ``target_modules`` names.

    ``["q_proj", "v_proj"]`` -> ``["self_attn.q_proj", "self_attn.v_proj"]``; ``None`` means every
    linear layer of a block (mlx-lm's and our default). A name that matches nothing is an error.
    """
    linears = [name for name, module in model.layers[0].named_modules() if isinstance(module, nn.Linear)]
    if not target_modules:
        return sorted(linears)
    keys = sorted(n for n in linears if n in target_modules or n.rsplit(".", 1)[-1] in target_modules)
    missing = [t for t in target_modules if not any(k == t or k.endswith("." + t) for k in keys)]
    if missing:
        raise ValueError(
            f"target_modules {missing} name no linear layer of this model; it has {sorted(linears)}"
        )
    return keys


def add_lora(model: nn.Module, cfg: TrainConfig) -> dict:
    """Freeze ``model`` and put a fresh LoRA from ``cfg`` on every block; returns the mlx-lm adapter config.

    ``cfg.lora_alpha / cfg.lora_rank`` becomes mlx-lm's ``scale`` (peft's convention); lora_a is
    drawn with ``cfg.seed``, lora_b starts at zero as in peft.
    """
    from mlx_lm.tuner.utils import linear_to_lora_layers

    config = {
        "fine_tune_type": "lora",
        "num_layers": len(model.layers),
        "lora_parameters": {
            "rank": int(cfg.lora_rank),
            "scale": cfg.lora_scale,
            "dropout": float(cfg.lora_dropout),
            "keys": lora_keys(model, list(cfg.target_modules)),
        },
    }
    model.freeze()
    mx.random.seed(int(cfg.seed))
    linear_to_lora_layers(model, config["num_layers"], config["lora_parameters"])
    return config


def pad_width(
    ids: np.ndarray, mask: np.ndarray, *, multiple: int, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad a batch to a width that is a multiple of ``multiple`` (pad tokens, mask 0).

    Causal attention and a zero mask make the extra columns change neither the loss nor the
    gradients; they only bound the number of distinct shapes a compiled step sees.
    """
    extra = -ids.shape[1] % multiple
    if not extra:
        return ids, mask
    return (
        np.pad(ids, ((0, 0), (0, extra)), constant_values=pad_id),
        np.pad(mask, ((0, 0), (0, extra)), constant_values=0),
    )


def nll_sum(model: nn.Module, ids: mx.array, mask: mx.array) -> tuple[mx.array, mx.array]:
    """Summed NLL of the masked tokens (each predicted from the tokens before it) and their count."""
    logits = model(ids[:, :-1]).astype(mx.float32)
    weights = mask[:, 1:]
    nll = nn.losses.cross_entropy(logits, ids[:, 1:], reduction="none") * weights
    return nll.sum(), weights.sum()


def mean_nll(model: nn.Module, ids: mx.array, mask: mx.array) -> mx.array:
    total, count = nll_sum(model, ids, mask)
    return total / mx.maximum(count, 1.0)


def train_steps(
    model: nn.Module,
    batches,
    *,
    lr_fn,
    grad_clip: float,
    weight_decay: float = 0.0,
    compile: bool = False,
    on_step=None,
) -> dict[str, Any]:
    """AdamW (torch's: bias-corrected, decoupled decay) over the trainable parameters, one update per batch.

    ``batches`` yields ``(ids, mask, n_tokens)``: right-padded numpy arrays and the batch's number
    of real (non-pad) tokens, which is what tokens/s counts (over the steps applied). ``lr_fn(step)``
    is the learning rate of 0-based ``step``; ``grad_clip`` <= 0 disables clipping. A batch without
    target tokens is skipped. Stops at the first non-finite loss or gradient norm (that update is
    not applied) and reports ``aborted_nan``.
    """
    optimizer = optim.AdamW(learning_rate=lr_fn(0), weight_decay=weight_decay, bias_correction=True)
    loss_and_grad = nn.value_and_grad(model, mean_nll)

    def step(ids, mask):
        loss, grads = loss_and_grad(model, ids, mask)
        if grad_clip > 0:
            grads, norm = optim.clip_grad_norm(grads, grad_clip)
        else:
            norm = mx.sqrt(sum((g.astype(mx.float32) ** 2).sum() for _, g in tree_flatten(grads)))
        finite = mx.logical_and(mx.isfinite(loss), mx.isfinite(norm))
        grads = tree_map(lambda g: mx.where(finite, g, mx.zeros_like(g)), grads)
        optimizer.update(model, grads)
        return loss, norm

    if compile:
        state = [model.state, optimizer.state]
        step = mx.compile(step, inputs=state, outputs=state)

    model.train()
    losses: list[float] = []
    norms: list[float] = []
    lrs: list[float] = []
    tokens = 0
    aborted = False
    start = time.perf_counter()
    for i, (ids, mask, n_tokens) in enumerate(batches):
        if not mask[:, 1:].any():
            continue  # no target token (every reply truncated away): no step, as in the torch backend
        lrs.append(float(lr_fn(i)))
        optimizer.learning_rate = mx.array(lrs[-1], dtype=mx.float32)
        loss, norm = step(mx.array(ids), mx.array(mask))
        mx.eval(loss, norm, model.trainable_parameters(), optimizer.state)
        losses.append(loss.item())
        norms.append(norm.item())
        if on_step is not None:
            on_step(i, len(batches) if hasattr(batches, "__len__") else -1, losses[-1], lrs[-1])
        if not (math.isfinite(losses[-1]) and math.isfinite(norms[-1])):
            aborted = True
            break
        tokens += int(n_tokens)
    model.eval()
    return {
        "losses": losses,
        "grad_norms": norms,
        "lrs": lrs,
        "tokens": tokens,
        "seconds": time.perf_counter() - start,
        "aborted_nan": aborted,
    }


def save_adapter(model: nn.Module, config: dict, out_dir: str | os.PathLike) -> Path:
    """Write the trainable LoRA weights and the mlx-lm adapter config (loadable by mlx_lm.load)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = dict(tree_flatten(model.trainable_parameters()))
    mx.save_safetensors(str(out_dir / ADAPTER_WEIGHTS), weights, metadata={"format": "mlx"})
    (out_dir / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out_dir


def fuse_to_hf(model: nn.Module, tokenizer, config: dict, src_dir: str | os.PathLike, out_dir) -> Path:
    """mlx-lm fuse: fold every LoRA layer into its base weight (dequantized) and save a plain HF folder."""
    from mlx.utils import tree_unflatten
    from mlx_lm.utils import dequantize_model, save

    fused = [
        (name, module.fuse(dequantize=True))
        for name, module in model.named_modules()
        if hasattr(module, "fuse")
    ]
    if fused:
        model.update_modules(tree_unflatten(fused))
    model = dequantize_model(model)
    config = dict(config)
    config.pop("quantization", None)
    config.pop("quantization_config", None)
    save(Path(out_dir), src_dir, model, tokenizer, config, donate_model=False)
    return Path(out_dir)


class MLXBackend:
    """:class:`~circadia.backends.base.Backend` on MLX with mlx-lm.

    ``compile``: ``mx.compile`` the training step (batch widths are then padded to a multiple of
    32 so that few shapes recompile). On CPU the first compile builds C++ kernels (15-30 s, cached
    on disk) for little gain, so the default is to compile only on a GPU.
    ``eval_max_len`` (truncation, :data:`~circadia.backends.base.EVAL_MAX_LEN` as in the torch
    backend, whatever training used) applies to :meth:`loss`, which scores each chat alone (no
    padding, so per-chat numbers can be cached). ``dtype``: the checkpoint's (``auto``). ``device`` is accepted for the common constructor and ignored: MLX runs on its
    default device (the GPU on Apple Silicon, else the CPU). ``loaded`` is ``(model_dir,
    adapter_dir)`` while the weights in memory are exactly those files (the nightly cycle skips a
    reload when it matches), None once training has changed them.
    """

    name = "mlx"

    def __init__(
        self,
        *,
        device: str | None = None,
        compile: bool | None = None,
        dtype: str = "auto",
        eval_max_len: int = EVAL_MAX_LEN,
    ):
        if dtype not in ("auto", "float32"):
            raise ValueError(f"the mlx backend keeps the checkpoint's dtype; dtype must be auto or float32, got {dtype!r}")
        self.compile = (mx.default_device().type == mx.gpu) if compile is None else bool(compile)
        self.eval_max_len = int(eval_max_len)
        self.model = None
        self.tokenizer = None
        self._mlx_tokenizer = None  # mlx-lm's TokenizerWrapper (streaming detokenizer, eos ids)
        self.model_dir: Path | None = None
        self.adapter_dir: Path | None = None
        self.adapter_config: dict | None = None  # mlx-lm format, of the loaded adapter
        self.loaded: tuple[str, str | None] | None = None

    # ------------------------------------------------------------------ loading

    def load(self, model_dir: Path, adapter_dir: Path | None = None) -> None:
        """Load the HF folder ``model_dir`` and, if given, an adapter (mlx-lm or peft format)."""
        with mlx_adapter(adapter_dir, model_dir) as folder:
            self.model, self._mlx_tokenizer = load_mlx(model_dir, folder)
            self.adapter_config = (
                None if folder is None else json.loads((folder / ADAPTER_CONFIG).read_text())
            )
        # the transformers tokenizer inside mlx-lm's wrapper (the wrapper is not callable): base.collate
        self.tokenizer = self._mlx_tokenizer._tokenizer
        self.model.eval()
        self.model_dir = Path(model_dir)
        self.adapter_dir = None if adapter_dir is None else Path(adapter_dir)
        self.loaded = (str(model_dir), None if adapter_dir is None else str(adapter_dir))

    def _loaded(self):
        if self.model is None:
            raise RuntimeError("MLXBackend: call load(model_dir) first")
        return self.model, self.tokenizer

    # ------------------------------------------------------------------ inference

    def generate(self, messages, *, max_tokens: int, temperature: float, seed: int) -> str:
        """The assistant's reply to chat ``messages``; ``temperature`` 0 is greedy, seeded sampling otherwise."""
        from mlx_lm import generate
        from mlx_lm.sample_utils import make_sampler

        model, tokenizer = self._loaded()
        prompt = tokenizer.apply_chat_template(
            validate_messages(messages, where="generate"), tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer.encode(prompt, add_special_tokens=False)
        mx.random.seed(int(seed))
        text = generate(
            model,
            self._mlx_tokenizer,
            ids,
            max_tokens=int(max_tokens),
            sampler=make_sampler(temp=float(temperature)),
        )
        return text.strip()  # as the torch backend returns it

    def generate_many(self, chats, *, max_tokens: int, temperature, seed: int) -> list[str]:
        """Replies to ``chats`` one at a time (chat ``i`` seeded ``seed + i``); ``temperature``
        is one value or one per chat (0 = greedy)."""
        temps = [float(temperature)] * len(chats) if isinstance(temperature, (int, float)) else [float(t) for t in temperature]
        if len(temps) != len(chats):
            raise ValueError("temperature must be one value, or one value per chat")
        return [self.generate(c, max_tokens=max_tokens, temperature=t, seed=int(seed) + i)
                for i, (c, t) in enumerate(zip(chats, temps))]

    def nll_sums(self, examples) -> list[tuple[float, int]]:
        """(summed NLL, assistant tokens) of each example, scored alone (no padding)."""
        model, tokenizer = self._loaded()
        model.eval()
        out = []
        for ex in examples:
            batch = collate(tokenizer, [ex], self.eval_max_len)
            s, n = nll_sum(model, mx.array(batch["input_ids"]), mx.array(batch["loss_mask"]))
            mx.eval(s, n)
            out.append((float(s.item()), int(n.item())))
        return out

    def loss(self, examples: list[Example]) -> float:
        """Mean NLL per assistant token over ``examples`` (token-weighted over all of them)."""
        sums = self.nll_sums(examples)
        return masked_nll_reduction(sum(s for s, _ in sums), sum(n for _, n in sums))

    # ------------------------------------------------------------------ training

    def train(self, batches: list[list[Example]], cfg: TrainConfig, out_dir: Path, *, on_step=None) -> TrainReport:
        """LoRA-train on ``batches`` (one optimizer step each) and write the adapter to ``out_dir``.

        A loaded adapter is trained further (its rank and scale are kept); otherwise a new one is
        made from ``cfg``. On ``aborted_nan`` nothing is written and the model is reloaded as it
        was before training.
        """
        model, tokenizer = self._loaded()
        self.loaded = None  # the weights in memory are about to change
        if self.adapter_config is None:
            adapter_config = add_lora(model, cfg)
        else:
            adapter_config = self.adapter_config
            model.freeze()
            model.unfreeze(keys=["lora_a", "lora_b"], strict=False)
        mx.random.seed(int(cfg.seed))  # LoRA dropout masks
        total = len(batches)

        def tokenized():
            for examples in batches:
                batch = collate(tokenizer, examples, cfg.max_seq_len)
                ids, mask = batch["input_ids"], batch["loss_mask"]
                if self.compile:  # few distinct shapes, few recompiles (what mlx-lm's trainer does)
                    ids, mask = pad_width(
                        ids, mask, multiple=COMPILE_PAD_MULTIPLE, pad_id=pad_id_of(tokenizer)
                    )
                yield ids, mask, int(batch["n_tokens"])

        result = train_steps(
            model,
            tokenized(),
            lr_fn=lambda step: lr_at(step, cfg, total),
            grad_clip=cfg.grad_clip,
            weight_decay=cfg.weight_decay,
            compile=self.compile,
            on_step=None if on_step is None else (lambda i, _n, loss, lr: on_step(i, total, loss, lr)),
        )
        report = TrainReport(
            losses=result["losses"],
            tokens=result["tokens"],
            seconds=result["seconds"],
            aborted_nan=result["aborted_nan"],
            lrs=result["lrs"],
            grad_norms=result["grad_norms"],
        )
        if report.aborted_nan:
            self.load(self.model_dir, self.adapter_dir)
            return report
        report.weights_finite = all(bool(mx.isfinite(v).all().item()) for _, v in tree_flatten(model.trainable_parameters()))
        save_adapter(model, adapter_config, out_dir)
        self.adapter_dir, self.adapter_config = Path(out_dir), adapter_config
        report.adapter_dir = str(out_dir)
        return report

    # ------------------------------------------------------------------ merging

    def merge(self, adapter_dir: Path, out_dir: Path) -> None:
        """mlx-lm fuse of ``adapter_dir`` into the loaded base model: a plain HF folder at ``out_dir``."""
        from mlx_lm.utils import load_config

        if self.model_dir is None:
            raise RuntimeError("MLXBackend: call load(model_dir) first")
        out_dir = Path(out_dir)
        if out_dir.exists() and any(out_dir.iterdir()):
            raise FileExistsError(f"{out_dir} exists and is not empty; merge into a new folder")
        with mlx_adapter(adapter_dir, self.model_dir) as folder:
            model, tokenizer = load_mlx(self.model_dir, folder)
        config = load_config(self.model_dir)
        config.update(mlx_config_overrides(self.model_dir))
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        try:
            fuse_to_hf(model, tokenizer, config, self.model_dir, tmp)
            (tmp / "README.md").unlink(missing_ok=True)  # mlx-lm's model card (mlx-community upload text)
            source = {
                "source": "merge",
                "backend": "mlx",
                "base": str(self.model_dir),
                "adapter": str(adapter_dir),
            }
            (tmp / "circadia_source.json").write_text(json.dumps(source, indent=2) + "\n")
            if out_dir.exists():
                out_dir.rmdir()
            os.replace(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextlib.contextmanager
def mlx_adapter(adapter_dir, model_dir) -> Iterator[Path | None]:
    """``adapter_dir`` as an mlx-lm adapter folder: itself, or a temporary conversion of a peft adapter."""
    if adapter_dir is None:
        yield None
        return
    adapter_dir = Path(adapter_dir)
    if adapters_convert.detect_format(adapter_dir) == "mlx":
        yield adapter_dir
        return
    config = json.loads((Path(model_dir) / "config.json").read_text())
    with tempfile.TemporaryDirectory(prefix="circadia-mlx-adapter-") as tmp:
        yield adapters_convert.peft_to_mlx(
            adapter_dir, Path(tmp) / "adapter", num_hidden_layers=config.get("num_hidden_layers")
        )
