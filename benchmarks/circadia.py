"""Circadia benchmark: training tokens/s of our sleep step vs a bare peft loop, and one full night.

    python benchmarks/circadia.py                      # CPU, SmolLM2-135M-Instruct (embedded), a few minutes
    python benchmarks/circadia.py --device cuda --model HuggingFaceTB/SmolLM2-1.7B-Instruct
    python benchmarks/circadia.py --skip-night         # only the training-throughput comparison

1. ``train``: the same batches (the day-1 memories + old-core replay, from the shared batch builder)
   and the same LoRA config, trained (a) by ``TorchBackend.train`` - our sleep step, which runs the
   LM head only on assistant-target positions - and (b) by a bare peft loop: ``get_peft_model`` +
   ``model(input_ids, attention_mask, labels)`` with non-assistant labels set to -100, AdamW and the
   same LR schedule. Both count the same real (non-pad) tokens; tokens/s is the best of
   ``--repeats`` runs, and the first-step losses must agree (same objective).
2. ``night``: the wall time of one full night (``circadia cycle``: pre-eval, route, dream, train,
   post-eval, decide) on day 1 of the simulated user with the DEFAULT night settings (not the mini
   profile's shrunken ones), per phase.

Writes JSON (default results/benchmarks/circadia.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
# this file is named like the package it benchmarks: keep its folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))


def _batches(args, tok_cfg):
    from circadia.data import day_paths, load_replay_set
    from circadia.journal import turn_from_json
    from circadia.router import RouterConfig, route
    from circadia.sleep.batches import build_batches

    turns = [turn_from_json(json.loads(line)) for line in day_paths()[0].read_text().splitlines() if line.strip()]
    memories = [route(t, RouterConfig())[0].example("memory") for t in turns]
    return build_batches(memories, [], load_replay_set("builtin"), iters=tok_cfg.iters, batch_size=tok_cfg.batch_size,
                         replay_fraction=0.2, seed=args.seed)


def bare_peft_loop(model_dir: Path, batches, cfg, device: str) -> dict[str, Any]:
    """The baseline: peft LoRA + the model's own loss (labels), full-vocabulary logits everywhere."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from circadia.backends.base import collate, lr_at

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    torch.manual_seed(cfg.seed)
    model = get_peft_model(model, LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                             target_modules=list(cfg.target_modules), task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    losses, tokens = [], 0
    t0 = time.perf_counter()
    for step, examples in enumerate(batches):
        b = collate(tok, examples, cfg.max_seq_len)
        ids = torch.as_tensor(b["input_ids"], device=device)
        att = torch.as_tensor(b["attention_mask"], device=device)
        labels = ids.clone()
        labels[torch.as_tensor(b["loss_mask"], device=device) == 0] = -100
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg, total=len(batches))
        loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.item()))
        tokens += int(b["n_tokens"])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds, "losses": losses}


def ours(model_dir: Path, batches, cfg, device: str) -> dict[str, Any]:
    from circadia.backends.base import make_backend

    be = make_backend("torch", device=device)
    be.load(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        rep = be.train(batches, cfg, Path(tmp) / "adapter")
    return {"seconds": rep.seconds, "tokens": rep.tokens, "tokens_per_s": rep.tokens_per_s, "losses": rep.losses}


def train_speed(args, model_dir: Path) -> dict[str, Any]:
    from circadia.backends.base import TrainConfig

    cfg = TrainConfig(iters=args.iters, batch_size=args.batch_size, lr=2e-4, warmup=1, max_seq_len=args.max_seq_len, seed=args.seed)
    batches = _batches(args, cfg)
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "bare_peft": []}
    for _ in range(args.repeats):  # interleaved, so a busy spell of the machine hits both
        runs["ours"].append(ours(model_dir, batches, cfg, args.device))
        runs["bare_peft"].append(bare_peft_loop(model_dir, batches, cfg, args.device))
    best = {k: max(v, key=lambda r: r["tokens_per_s"]) for k, v in runs.items()}
    a, b = best["ours"]["losses"][0], best["bare_peft"]["losses"][0]
    return {
        "config": cfg.to_json(),
        "steps": len(batches),
        "tokens": best["ours"]["tokens"],
        "ours": {"tokens_per_s": best["ours"]["tokens_per_s"], "all_tokens_per_s": [r["tokens_per_s"] for r in runs["ours"]],
                 "first_loss": a, "last_loss": best["ours"]["losses"][-1]},
        "bare_peft": {"tokens_per_s": best["bare_peft"]["tokens_per_s"],
                      "all_tokens_per_s": [r["tokens_per_s"] for r in runs["bare_peft"]],
                      "first_loss": b, "last_loss": best["bare_peft"]["losses"][-1]},
        "speedup": best["ours"]["tokens_per_s"] / best["bare_peft"]["tokens_per_s"],
        "first_loss_abs_diff": abs(a - b),
        "same_objective": math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4),
    }


def one_night(args, model_dir: Path) -> dict[str, Any]:
    from circadia.config import night_config
    from circadia.data import day_paths
    from circadia.home import Home
    from circadia.journal import Journal, import_log
    from circadia.sleep.night import run_night

    cfg = night_config({"model": str(model_dir), "device": args.device, "store": args.store, "embedder": "minilm",
                        "seed": args.seed})
    root = Path(tempfile.mkdtemp(prefix="circadia-bench-"))
    try:
        home = Home(root / "home").init()
        import_log(day_paths()[0], Journal(home.memories))
        t0 = time.perf_counter()
        rec = run_night(home, cfg, model_dir=model_dir, log=None)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"wall_s": wall, "phases_s": rec["timings"], "status": rec["status"], "config": cfg.to_json(),
            "train_tokens": rec["train"]["tokens"], "train_tokens_per_s": rec["train"]["tokens_per_s"],
            "dreams": rec["dreams"], "harness_items": len((rec.get("pre") or {}).get("harness_per_category") or {}) * 3}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded", help="folder, 'embedded' (SmolLM2-135M-Instruct) or a hub name")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--store", default="auto", choices=["auto", "chroma", "numpy"])
    ap.add_argument("--skip-night", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "circadia.json"))
    args = ap.parse_args(argv)

    from circadia.models import resolve_model
    from circadian_core.device import pick_device
    from circadian_core.record import benchmark_header, write_json_atomic

    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    args.device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = resolve_model(args.model)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    result: dict[str, Any] = {"train": train_speed(args, model_dir)}
    if not args.skip_night:
        result["night"] = one_night(args, model_dir)
    command = "python benchmarks/circadia.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = {
        **benchmark_header("circadia", command, args.device, load_before=load_before, started=t0),
        "model": str(model_dir),
        **result,
    }
    path = write_json_atomic(args.out, out)
    t = out["train"]
    msg = (f"train: ours {t['ours']['tokens_per_s']:.0f} tokens/s vs bare peft {t['bare_peft']['tokens_per_s']:.0f} "
           f"tokens/s ({t['speedup']:.2f}x, first losses {t['ours']['first_loss']:.4f} / {t['bare_peft']['first_loss']:.4f})")
    if "night" in out:
        msg += f"; one full night on {args.device}: {out['night']['wall_s']:.0f} s ({out['night']['status']})"
    print(msg + f" -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
