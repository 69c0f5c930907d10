"""The torch + peft backend: LoRA training, assistant-token loss, generation, merge_and_unload.

The training step computes the LM head only at assistant-target positions (the hidden states of
all other positions never meet the 49k-word vocabulary), which is the bulk of what makes it
faster than a plain ``model(**batch, labels=...)`` loop; the loss is the same number.
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
    TrainConfig,
    TrainReport,
    collate,
    lr_at,
    masked_nll_reduction,
)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def _torch():
    import torch

    return torch


def is_peft_adapter(path: str | Path) -> bool:
    return all((Path(path) / f).exists() for f in ADAPTER_FILES)


class _RowTemperature:
    """Logits processor: divide each row's scores by its own temperature."""

    def __init__(self, temps):
        self.temps = temps[:, None]

    def __call__(self, input_ids, scores):
        return scores / self.temps.to(scores.dtype)


class TorchBackend:
    """circadia's :class:`~circadia.backends.base.Backend` on torch + transformers + peft."""

    name = "torch"

    def __init__(self, device: str | None = None, *, dtype: str = "float32", eval_batch_size: int = 8, threads: int | None = None,
                 eval_max_len: int = EVAL_MAX_LEN):
        torch = _torch()
        from circadian_core.device import pick_device

        self.device = pick_device(device or "auto")
        if self.device == "mlx":
            raise ValueError("the torch backend cannot run on device 'mlx'; use backend 'mlx' or device cpu/cuda/mps")
        self.dtype = getattr(torch, dtype)
        self.eval_batch_size = int(eval_batch_size)
        self.eval_max_len = int(eval_max_len)
        if threads:
            torch.set_num_threads(int(threads))
        self.model = None
        self.tokenizer = None
        self.model_dir: Path | None = None
        self.adapter_dir: Path | None = None
        self.loaded: tuple[str, str | None] | None = None  # (model_dir, adapter_dir) now in memory, unmodified

    # ------------------------------------------------------------------ loading
    def load(self, model_dir: Path, adapter_dir: Path | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").exists():
            raise FileNotFoundError(f"{model_dir} is not a Hugging Face model folder (no config.json)")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
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

    def _require(self):
        if self.model is None:
            raise RuntimeError("TorchBackend: call load(model_dir) first")
        return self.model, self.tokenizer

    # ------------------------------------------------------------------ generation
    def _prompt_ids(self, messages) -> list[int]:
        ids = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    def generate(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int) -> str:
        return self.generate_many([messages], max_tokens=max_tokens, temperature=temperature, seed=seed)[0]

    def generate_many(self, chats: Sequence[list[dict[str, str]]], *, max_tokens: int, temperature: float | Sequence[float],
                      seed: int, batch_size: int = 8) -> list[str]:
        """Replies to several chats, batched with left padding.

        ``temperature`` is one value for all chats (0 = greedy) or one value per chat (all > 0:
        sampled together in one batch, each row at its own temperature - the dreamer's REM bursts).
        """
        torch = _torch()
        model, tok = self._require()
        model.eval()
        temps = None if isinstance(temperature, (int, float)) else [float(t) for t in temperature]
        if temps is not None and (len(temps) != len(chats) or min(temps, default=1.0) <= 0):
            raise ValueError("per-chat temperatures must be one positive value per chat")
        out: list[str] = []
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        for start in range(0, len(chats), batch_size):
            prompts = [self._prompt_ids(c) for c in chats[start : start + batch_size]]
            width = max(len(p) for p in prompts)
            ids = torch.full((len(prompts), width), pad, dtype=torch.long)
            att = torch.zeros((len(prompts), width), dtype=torch.long)
            for i, p in enumerate(prompts):
                ids[i, width - len(p) :] = torch.tensor(p)
                att[i, width - len(p) :] = 1
            kwargs: dict = {"do_sample": False}
            if temps is not None:
                from transformers import LogitsProcessorList

                row_t = torch.tensor(temps[start : start + batch_size], dtype=torch.float32, device=self.device)
                kwargs = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "remove_invalid_values": True,
                          "logits_processor": LogitsProcessorList([_RowTemperature(row_t)])}
            elif temperature > 0:
                kwargs = {"do_sample": True, "temperature": float(temperature), "top_k": 0, "top_p": 1.0,
                          "remove_invalid_values": True}
            with torch.random.fork_rng(devices=[] if self.device == "cpu" else None), torch.no_grad():
                torch.manual_seed(int(seed) + start)
                gen = model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=att.to(self.device),
                    max_new_tokens=int(max_tokens),
                    pad_token_id=pad,
                    eos_token_id=tok.eos_token_id,
                    **kwargs,
                )
            for row in gen[:, width:]:
                out.append(tok.decode(row.tolist(), skip_special_tokens=True).strip())
        return out

    # ------------------------------------------------------------------ loss
    def _nll_sum(self, model, batch: dict[str, np.ndarray]):
        """Summed NLL over assistant-target tokens and their count (LM head only where needed)."""
        torch = _torch()
        ids = torch.as_tensor(batch["input_ids"], device=self.device)
        att = torch.as_tensor(batch["attention_mask"], device=self.device)
        mask = torch.as_tensor(batch["loss_mask"], device=self.device)[:, 1:] > 0
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        hidden = base.model(input_ids=ids, attention_mask=att).last_hidden_state[:, :-1]
        picked = hidden[mask]
        logits = base.lm_head(picked).float()
        targets = ids[:, 1:][mask]
        nll = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
        return nll, int(mask.sum().item())

    def loss(self, examples: list[Example]) -> float:
        """Mean NLL per assistant token over all ``examples`` (token-weighted)."""
        torch = _torch()
        model, tok = self._require()
        model.eval()
        max_len = self.eval_max_len
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(examples), self.eval_batch_size):
                batch = collate(tok, examples[start : start + self.eval_batch_size], max_len)
                s, n = self._nll_sum(model, batch)
                total += float(s.item())
                count += n
        return masked_nll_reduction(total, count)

    # ------------------------------------------------------------------ training
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
            model = get_peft_model(model, config)
        self.model = model
        return model

    def train(self, batches: list[list[Example]], cfg: TrainConfig, out_dir: Path) -> TrainReport:
        """One optimizer step per batch (AdamW, warmup+cosine, grad clipping); adapter -> ``out_dir``.

        A non-finite loss or gradient norm stops training at once: no adapter is written and the
        report says ``aborted_nan``. Then reload the previous adapter before using the model again.
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
                batch = collate(tok, examples, cfg.max_seq_len)
                lr = lr_at(step, cfg, total=total)
                for group in opt.param_groups:
                    group["lr"] = lr
                nll, n = self._nll_sum(model, batch)
                if n == 0:
                    continue  # nothing to learn in this batch (every reply truncated away)
                loss = nll / n
                loss.backward()
                if cfg.grad_clip and cfg.grad_clip > 0:
                    norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
                else:
                    norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))
                loss_f = float(loss.item())
                report.losses.append(loss_f)
                report.lrs.append(lr)
                report.grad_norms.append(norm)
                if not (math.isfinite(loss_f) and math.isfinite(norm)):
                    report.aborted_nan = True
                    opt.zero_grad(set_to_none=True)
                    break
                opt.step()
                opt.zero_grad(set_to_none=True)
                report.tokens += int(batch["n_tokens"])
            model.eval()
        report.seconds = time.perf_counter() - t0
        if not report.aborted_nan:
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
