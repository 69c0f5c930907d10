"""The torch + peft backend: LoRA training, assistant-token loss, generation, merge_and_unload.

The training step computes the LM head only at assistant-target positions (the hidden states of
all other positions never meet the 49k-word vocabulary), which is the bulk of what makes it
faster than a plain ``model(**batch, labels=...)`` loop; the loss is the same number.
Generation prefills the prompts' shared prefix once and decodes with a KV cache
(:mod:`circadia.backends.torch_generate`); evaluation scores each chat alone (no padding) from
token ids tokenized once (:class:`~circadia.backends.base.TokenCache`).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from circadia.backends.base import (
    EVAL_MAX_LEN,
    Example,
    StepHook,
    TokenCache,
    TrainConfig,
    TrainReport,
    lr_at,
    masked_nll_reduction,
    pad_id_of,
)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def _torch():
    import torch

    return torch


def is_peft_adapter(path: str | Path) -> bool:
    return all((Path(path) / f).exists() for f in ADAPTER_FILES)


def packing_supported() -> bool:
    """transformers reads restarting ``position_ids`` without an attention mask as packed chats
    (each attends only to itself) from 4.56 on."""
    try:
        from transformers import masking_utils
    except ImportError:  # pragma: no cover - very old transformers
        return False
    return hasattr(masking_utils, "find_packed_sequence_indices")


def pack_rows(rows: Sequence[tuple[list[int], list[int]]]) -> dict[str, np.ndarray]:
    """Chats ``(ids, mask)`` concatenated into one row with positions restarting at each chat.

    The same tokens and targets as the padded batch, none of its padding: the first token of
    every chat is never a target (it has nothing of its own before it)."""
    ids = np.concatenate([np.asarray(i, dtype=np.int64) for i, _ in rows])[None]
    mask = np.concatenate([np.asarray(m, dtype=np.float32) for _, m in rows])
    starts = np.cumsum([0] + [len(i) for i, _ in rows[:-1]])
    mask[starts] = 0
    pos = np.concatenate([np.arange(len(i), dtype=np.int64) for i, _ in rows])[None]
    return {"input_ids": ids, "loss_mask": mask[None], "attention_mask": np.ones_like(ids), "position_ids": pos,
            "n_tokens": np.asarray(ids.shape[1], dtype=np.int64)}


def shared_prefix(rows: Sequence[tuple[list[int], list[int]]]) -> int:
    """Leading tokens all chats share that can run once: their common prefix, ended before the
    position that predicts any chat's first target (so every target is predicted inside its chat)."""
    from circadia.backends.torch_generate import common_prefix

    if len(rows) < 2:
        return 0
    first = min(next((t for t, m in enumerate(mask) if m and t > 0), len(mask)) for _, mask in rows)
    return max(0, min(common_prefix([ids for ids, _ in rows]), first - 1))


def pack_for_scoring(rows: Sequence[tuple[list[int], list[int]]], min_prefix: int = 4) -> tuple[dict[str, np.ndarray], list[int]]:
    """A packed scoring batch of ``rows`` and the length of each chat's part of the packed row.

    With a shared prefix of at least ``min_prefix`` tokens the row holds only the chats' suffixes
    (``prefix_ids`` runs once before them; positions continue after it; ``chat_of`` names each
    token's chat for the attention mask); otherwise the whole chats (:func:`pack_rows`)."""
    p = shared_prefix(rows) if packing_supported() else 0
    if p < min_prefix:
        return pack_rows(rows), [len(ids) for ids, _ in rows]
    suffix = [(ids[p:], mask[p:]) for ids, mask in rows]
    batch = pack_rows(suffix)
    batch["position_ids"] = batch["position_ids"] + p
    batch["prefix_ids"] = np.asarray(rows[0][0][:p], dtype=np.int64)[None]
    lengths = [len(ids) for ids, _ in suffix]
    batch["chat_of"] = np.repeat(np.arange(len(suffix)), lengths)
    return batch, lengths


def pack_groups(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of consecutive chats grouped so that each group's tokens fit ``budget`` (a longer
    chat is a group of its own; ``budget`` 0: every chat alone)."""
    groups: list[list[int]] = []
    used = 0
    for i, n in enumerate(lengths):
        if groups and budget and used + n <= budget:
            groups[-1].append(i)
            used += n
        else:
            groups.append([i])
            used = n
    return groups


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto``: bfloat16 on a GPU (CUDA, MPS), float32 on the CPU (and for parity tests)."""
    if dtype == "auto":
        return "bfloat16" if device.split(":")[0] in ("cuda", "mps") else "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    return dtype


class TorchBackend:
    """circadia's :class:`~circadia.backends.base.Backend` on torch + transformers + peft.

    ``dtype`` of the base weights (``auto``: bfloat16 on CUDA/MPS, float32 on CPU); LoRA weights
    and the optimizer stay float32 whatever it is. The model is loaded from disk once per base
    folder: loading another adapter on the same base only swaps the LoRA layers.
    """

    name = "torch"

    def __init__(self, device: str | None = None, *, dtype: str = "auto", eval_max_len: int = EVAL_MAX_LEN,
                 gen_batch_size: int = 16, pack: bool = True, score_tokens: int = 2048):
        torch = _torch()
        from circadian_core.device import pick_device

        self.device = pick_device(device or "auto")
        if self.device == "mlx":
            raise ValueError("the torch backend cannot run on device 'mlx'; use backend 'mlx' or device cpu/cuda/mps")
        self.dtype_name = resolve_dtype(dtype, self.device)
        self.dtype = getattr(torch, self.dtype_name)
        self.eval_max_len = int(eval_max_len)
        self.gen_batch_size = int(gen_batch_size)
        self.pack = bool(pack)
        self.score_tokens = int(score_tokens)  # tokens per packed row when scoring chats
        self.model = None
        self.tokenizer = None
        self.model_dir: Path | None = None
        self.adapter_dir: Path | None = None
        self.loaded: tuple[str, str | None] | None = None  # (model_dir, adapter_dir) now in memory, unmodified
        self.tokens = TokenCache()

    # ------------------------------------------------------------------ loading
    def load(self, model_dir: Path, adapter_dir: Path | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").exists():
            raise FileNotFoundError(f"{model_dir} is not a Hugging Face model folder (no config.json)")
        if self.model is not None and self.model_dir is not None and self.model_dir.resolve() == model_dir.resolve():
            model = self._bare_base()  # same base: keep its weights, drop the LoRA layers
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            if self.tokenizer.pad_token_id is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
            self.tokens = TokenCache()
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=self.dtype)
            model.to(self.device)
        if adapter_dir is not None and not is_peft_adapter(adapter_dir) and (Path(adapter_dir) / "adapters.safetensors").exists():
            # an mlx-lm adapter (written by the MLX backend): convert it to peft once, beside the cache
            import tempfile

            from circadia.adapters_convert import mlx_to_peft

            self._converted = tempfile.TemporaryDirectory(prefix="circadia-peft-")
            adapter_dir = mlx_to_peft(adapter_dir, Path(self._converted.name) / "adapter", base_model_name_or_path=str(model_dir))
        if adapter_dir is not None:
            from peft import PeftModel

            if not is_peft_adapter(adapter_dir):
                raise FileNotFoundError(
                    f"{adapter_dir} is not a peft adapter (needs {', '.join(ADAPTER_FILES)}); "
                    "an mlx-lm adapter converts with circadia.adapters_convert.convert"
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        model.eval()
        self.model = model
        self.model_dir = model_dir
        self.adapter_dir = None if adapter_dir is None else Path(adapter_dir)
        self.loaded = (str(model_dir), None if adapter_dir is None else str(adapter_dir))

    def _bare_base(self):
        """The base model in memory without any LoRA layer (its weights were never trained)."""
        from peft import PeftModel

        model = self.model
        if isinstance(model, PeftModel):
            model = model.unload()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def _require(self):
        if self.model is None:
            raise RuntimeError("TorchBackend: call load(model_dir) first")
        return self.model, self.tokenizer

    def _parts(self):
        """(decoder stack, LM head) of the model in memory, LoRA layers included."""
        model, _ = self._require()
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        return base.model, base.lm_head

    # ------------------------------------------------------------------ generation
    def _prompt_ids(self, messages) -> list[int]:
        return self.tokens.prompt(self.tokenizer, messages)

    def generate(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int) -> str:
        return self.generate_many([messages], max_tokens=max_tokens, temperature=temperature, seed=seed)[0]

    def generate_many(self, chats: Sequence[list[dict[str, str]]], *, max_tokens: int, temperature: float | Sequence[float],
                      seed: int) -> list[str]:
        """Replies to several chats: shared-prefix prefill and a KV-cached decode, batched.

        ``temperature`` is one value for all chats (0 = greedy) or one value per chat (each row
        sampled at its own temperature: the dreamer's REM bursts). Rows are grouped by prompt
        length (``gen_batch_size`` per group) so that padding stays small; replies come back
        in the order of ``chats``. Seeded: the same call gives the same replies.
        """
        torch = _torch()
        from circadia.backends.torch_generate import generate_tokens

        model, tok = self._require()
        model.eval()
        temps = [float(temperature)] * len(chats) if isinstance(temperature, (int, float)) else [float(t) for t in temperature]
        if len(temps) != len(chats) or min(temps, default=0.0) < 0:
            raise ValueError("temperature must be one value >= 0, or one value >= 0 per chat")
        prompts = [self._prompt_ids(c) for c in chats]
        order = sorted(range(len(chats)), key=lambda i: (len(prompts[i]), i))
        core, head = self._parts()
        eos = {int(tok.eos_token_id)} if tok.eos_token_id is not None else set()
        extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos |= set(extra if isinstance(extra, (list, tuple)) else [extra] if extra is not None else [])
        gen = torch.Generator(device=self.device if self.device != "mps" else "cpu").manual_seed(int(seed))
        replies: list[str] = [""] * len(chats)
        for start in range(0, len(order), self.gen_batch_size):
            group = order[start : start + self.gen_batch_size]
            outs = generate_tokens(core, head, [prompts[i] for i in group], max_new=int(max_tokens),
                                   temperatures=[temps[i] for i in group], eos_ids=eos, pad_id=pad_id_of(tok),
                                   device=self.device, generator=gen)
            for i, ids in zip(group, outs):
                replies[i] = tok.decode(ids, skip_special_tokens=True).strip()
        return replies

    # ------------------------------------------------------------------ loss
    def _token_nll(self, batch: dict[str, np.ndarray]):
        """NLL of every assistant-target token of ``batch`` (LM head only where needed) and the
        flat positions of those targets in ``input_ids``.

        A packed batch (``position_ids`` present: several chats in one row, positions restarting
        at each) runs without an attention mask: transformers then attends within each chat only.
        Target positions are found on the host (the mask is a numpy array), so nothing here waits
        for the device."""
        torch = _torch()
        dev = self.device
        ids = torch.as_tensor(batch["input_ids"]).to(dev, non_blocking=True)
        core, head = self._parts()
        if "prefix_ids" in batch:  # chats after a shared prefix that runs once (scoring only)
            from circadia.backends.torch_generate import new_cache, visible_mask

            prefix = torch.as_tensor(batch["prefix_ids"]).to(dev)
            cache = new_cache(core)
            core(input_ids=prefix, position_ids=torch.arange(prefix.shape[1], device=dev)[None], past_key_values=cache,
                 use_cache=True)
            pos = torch.as_tensor(batch["position_ids"]).to(dev, non_blocking=True)
            mask = visible_mask(batch["chat_of"], prefix.shape[1], self.dtype, dev)
            hidden = core(input_ids=ids, position_ids=pos, attention_mask=mask, past_key_values=cache,
                          use_cache=True).last_hidden_state
        elif "position_ids" in batch:
            pos = torch.as_tensor(batch["position_ids"]).to(dev, non_blocking=True)
            hidden = core(input_ids=ids, position_ids=pos, use_cache=False).last_hidden_state
        else:
            att = torch.as_tensor(batch["attention_mask"]).to(dev, non_blocking=True)
            hidden = core(input_ids=ids, attention_mask=att, use_cache=False).last_hidden_state
        width = ids.shape[1]
        rows, cols = np.divmod(np.flatnonzero(batch["loss_mask"][:, 1:] > 0), width - 1)  # target t+1 predicted at t
        at = rows * width + cols
        at_dev = torch.as_tensor(at).to(dev, non_blocking=True)
        logits = head(hidden.reshape(-1, hidden.shape[-1]).index_select(0, at_dev)).float()
        nll = torch.nn.functional.cross_entropy(logits, ids.reshape(-1).index_select(0, at_dev + 1), reduction="none")
        return nll, at + 1

    def _nll_sum(self, model, batch: dict[str, np.ndarray]):
        """Summed NLL over the batch's assistant-target tokens and their count."""
        nll, targets = self._token_nll(batch)
        return nll.sum(), len(targets)

    def nll_sums(self, examples: Sequence[Example]) -> list[tuple[float, int]]:
        """(summed NLL, assistant tokens) of each example, for few forward passes: the chats are
        packed into rows of at most ``score_tokens`` tokens (attention within each chat only, no
        padding), the prefix they all share (system prompt, role header) runs once, and the
        per-token losses are summed per chat. A forward pass streams every weight once, so on a
        CPU fewer passes and fewer tokens is what counts."""
        torch = _torch()
        model, tok = self._require()
        model.eval()
        rows = [self.tokens.chat(tok, ex.messages, self.eval_max_len) for ex in examples]
        out: list[tuple[float, int]] = [(0.0, 0)] * len(rows)
        groups = pack_groups([len(ids) for ids, _ in rows], self.score_tokens if packing_supported() else 0)
        with torch.inference_mode():
            for group in groups:
                batch, lengths = pack_for_scoring([rows[i] for i in group])
                nll, targets = self._token_nll(batch)
                starts = np.cumsum([0] + lengths[:-1])
                owner = np.searchsorted(starts, targets, side="right") - 1
                sums = torch.zeros(len(group), dtype=torch.float64, device=nll.device)
                sums.index_add_(0, torch.as_tensor(owner).to(nll.device), nll.double())
                counts = np.bincount(owner, minlength=len(group))
                for i, s, n in zip(group, sums.tolist(), counts.tolist()):
                    out[i] = (float(s), int(n))
        return out

    def loss(self, examples: list[Example]) -> float:
        """Mean NLL per assistant token over all ``examples`` (token-weighted)."""
        sums = self.nll_sums(examples)
        return masked_nll_reduction(sum(s for s, _ in sums), sum(n for _, n in sums))

    # ------------------------------------------------------------------ training
    def _train_batch(self, tok, examples: Sequence[Example], max_seq_len: int) -> dict[str, np.ndarray]:
        """One training batch: packed into one row (no padding) when ``pack`` and transformers
        supports packed position ids, else right-padded (:func:`collate`)."""
        if self.pack and len(examples) > 1 and packing_supported():
            return pack_rows([self.tokens.chat(tok, ex.messages, max_seq_len) for ex in examples])
        return self.tokens.batch(tok, examples, max_seq_len)

    def _trainable(self, cfg: TrainConfig):
        """The model with trainable LoRA: continue a loaded adapter, else add a fresh one."""
        torch = _torch()
        from peft import LoraConfig, PeftModel, get_peft_model

        model, _ = self._require()
        if isinstance(model, PeftModel):
            for name, p in model.named_parameters():
                p.requires_grad_("lora_" in name)
            return model
        torch.manual_seed(int(cfg.seed))
        config = LoraConfig(
            r=int(cfg.lora_rank),
            lora_alpha=float(cfg.lora_alpha),
            lora_dropout=float(cfg.lora_dropout),
            target_modules=list(cfg.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # peft calls a deprecated transformers property
            model = get_peft_model(model, config)  # LoRA weights float32 (peft's autocast_adapter_dtype)
        self.model = model
        return model

    def train(self, batches: list[list[Example]], cfg: TrainConfig, out_dir: Path, *, on_step: StepHook | None = None) -> TrainReport:
        """One optimizer step per batch (AdamW, warmup+cosine, grad clipping); adapter -> ``out_dir``.

        A non-finite loss or gradient norm stops training at once: no adapter is written and the
        report says ``aborted_nan``. Then reload the previous adapter before using the model again.
        One host sync per step (loss and gradient norm together, for the non-finite check);
        ``weights_finite`` is checked once at the end. ``on_step(step, total, loss, lr)`` reports progress.
        """
        torch = _torch()
        self.loaded = None  # the weights in memory are about to change
        model = self._trainable(cfg)
        _, tok = self._require()
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError("no trainable LoRA parameters: check target_modules against the model")
        opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=cfg.weight_decay)
        report = TrainReport(losses=[], tokens=0, seconds=0.0, aborted_nan=False)
        total = len(batches)
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[] if self.device == "cpu" else None):
            torch.manual_seed(int(cfg.seed) + 1)  # LoRA dropout masks
            model.train()
            for step, examples in enumerate(batches):
                batch = self._train_batch(tok, examples, cfg.max_seq_len)
                lr = lr_at(step, cfg, total=total)
                for group in opt.param_groups:
                    group["lr"] = lr
                nll, n = self._nll_sum(model, batch)
                if n == 0:
                    continue  # nothing to learn in this batch (every reply truncated away)
                loss = nll / n
                loss.backward()
                if cfg.grad_clip and cfg.grad_clip > 0:
                    norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                else:
                    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
                loss_f, norm_f = torch.stack([loss.detach().float(), norm.detach().float()]).tolist()
                report.losses.append(loss_f)
                report.lrs.append(lr)
                report.grad_norms.append(norm_f)
                if on_step is not None:
                    on_step(step, total, loss_f, lr)
                if not (math.isfinite(loss_f) and math.isfinite(norm_f)):
                    report.aborted_nan = True
                    opt.zero_grad(set_to_none=True)
                    break
                opt.step()
                opt.zero_grad(set_to_none=True)
                report.tokens += int(batch["n_tokens"])
            model.eval()
        report.seconds = time.perf_counter() - t0
        if not report.aborted_nan:
            report.weights_finite = bool(torch.stack([torch.isfinite(p).all() for p in params]).all())
            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(str(out_dir))
            report.adapter_dir = str(out_dir)
            self.adapter_dir = out_dir
        return report

    # ------------------------------------------------------------------ merge
    def merge(self, adapter_dir: Path, out_dir: Path) -> None:
        """peft ``merge_and_unload`` of ``adapter_dir`` into the loaded base; plain HF folder at ``out_dir``."""
        torch = _torch()
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        from circadia.models.embedded import fix_config_for_mlx

        if self.model_dir is None:
            raise RuntimeError("TorchBackend.merge: call load(model_dir) first (the base to merge into)")
        out_dir = Path(out_dir)
        if out_dir.exists() and any(out_dir.iterdir()):
            raise FileExistsError(f"merge: {out_dir} exists and is not empty; pick a new folder")
        base = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        tmp = out_dir.with_name(f".{out_dir.name}.merging")
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        merged.save_pretrained(str(tmp))
        self.tokenizer.save_pretrained(str(tmp))
        fix_config_for_mlx(tmp)
        (tmp / "circadia_source.json").write_text(
            json.dumps({"source": "merge", "backend": "torch", "base": str(self.model_dir), "adapter": str(adapter_dir)}, indent=2) + "\n"
        )
        if out_dir.exists():
            out_dir.rmdir()
        tmp.rename(out_dir)
