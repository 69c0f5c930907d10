"""hal_sleep_wake benchmark: images/s of wake steps and the time of one NREM merge; optionally the whole sequence.

    python benchmarks/hal.py                                   # CPU, the mini model (narrow ResNet-18, 8x8), small
    python benchmarks/hal.py --profile paper --steps 5         # CPU, the paper model (width 64, 32x32): slow
    python benchmarks/hal.py --device cuda --profile paper     # GPU: the paper model at its batch size
    python benchmarks/hal.py --study hal_seqcl --variant derpp-200 --profile paper --device cuda
    python benchmarks/hal.py --device cuda --suite sequence    # GPU: every variant of the paper profile's hal
                                                               # study, one seed, CIFAR-10 -> CIFAR-100 (wall time)

``speed`` (default) takes the config of one params.yaml study (``--study``, ``--profile``, ``--variant``),
builds the learner on synthetic uint8 images of the profile's shape and class counts (no download; a
wake step does not care what the pixels show), fills L1, then times ``--steps`` wake steps after
``--warmup`` (the method's whole step: augmentation, forward, backward, optimizer, push to L1) and
``--repeats`` NREM merges of trained (non-zero) adapters. With LoRA it runs every implementation in
``--lora-impls`` side by side in one process (``weight``: one conv per layer, the default; ``peft``:
peft's layers, the previous implementation) and reports their ratio. Timings are the best of
``--repeats`` runs, synchronized on CUDA. Writes JSON (default results/benchmarks/hal.json).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _study(profile: str, study: str, variant: str) -> dict[str, Any]:
    from pipelines.dag import load_profile

    return load_profile(profile).studies[study].config(variant)


def _synthetic(cfg, seed: int):
    """A TaskSequence of random uint8 images with the shape and class counts of ``cfg.data``."""
    from hal_sleep_wake.data import TaskSequence
    from hal_sleep_wake.plan import task_layout

    layout = task_layout(cfg) or [(f"digits task {t}", 2) for t in range(5)]  # the hal_digits artifact
    layout = [(name, k or 10) for name, k in layout]
    digits = all(name.startswith(("digits", "split_digits")) for name, _ in layout)
    shape = (1, 8, 8) if digits else (3, cfg.data.image_size or 32, cfg.data.image_size or 32)
    g = torch.Generator().manual_seed(seed)
    seq = TaskSequence([], [], [], [], [], [])
    offset = 0
    for name, k in layout:
        n = max(4 * cfg.wake.batch_size, 256)
        seq.names.append(name)
        seq.classes.append([str(c) for c in range(k)])
        for xs, ys, size in ((seq.x_train, seq.y_train, n), (seq.x_test, seq.y_test, 256)):
            xs.append(torch.randint(0, 256, (size, *shape), generator=g, dtype=torch.uint8))
            ys.append(torch.randint(0, k, (size,), generator=g) + offset)
        offset += k
    return seq


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _one_impl(cfg, seq, args: argparse.Namespace, dev: torch.device) -> dict[str, Any]:
    """Wake steps and merges of one configuration (one LoRA implementation)."""
    from hal_sleep_wake.learner import Learner
    from hal_sleep_wake.lora import lora_parameters, merge_lora

    torch.manual_seed(args.seed)
    learner = Learner(cfg, seq, args.scenario, device=dev, seed=args.seed)
    x, y = seq.x_train[0], seq.y_train[0]
    tasks = torch.zeros(len(y), dtype=torch.long, device=dev)
    bs = cfg.wake.batch_size
    if learner.memory is not None:
        n = min(cfg.memory.capacity, len(y))
        logits = torch.zeros(n, seq.n_classes, device=dev) if learner.memory.logits is not None else None
        learner.memory.push(x[:n], y[:n], tasks[:n], logits=logits)
    method = learner.method

    def wake(n: int) -> float:
        _sync(dev)
        t0 = time.perf_counter()
        for i in range(n):
            s = (i * bs) % (len(y) - bs)
            idx = torch.arange(s, s + bs, device=dev)
            method.observe(x[idx], y[idx], tasks[idx], 0, idx)
        _sync(dev)
        return time.perf_counter() - t0

    wake(args.warmup)
    runs = [wake(args.steps) for _ in range(args.repeats)]
    best = min(runs)
    # images through the network per step: the new batch plus the L1 draws the method forwards
    draws = {"hal": 1, "er": 1, "agem": 1, "derpp": 2}.get(cfg.method, 0)
    replayed = draws * min(cfg.memory.replay_n, len(learner.memory)) if learner.memory is not None else 0
    out: dict[str, Any] = {
        "trainable_params": sum(p.numel() for p in learner.trainable()),
        "total_params": sum(p.numel() for p in learner.model.parameters()),
        "batch_replayed": replayed,
        "wake": {"steps": args.steps, "seconds": best, "seconds_all": runs, "steps_per_s": args.steps / best,
                 "new_images_per_s": args.steps * bs / best, "images_per_s": args.steps * (bs + replayed) / best},
    }
    if cfg.uses_lora:
        merges = []
        for _ in range(args.repeats):
            with torch.no_grad():  # trained adapters: a merge with real work in it
                for p in lora_parameters(learner.model):
                    p.normal_(0, 0.01)
            _sync(dev)
            t0 = time.perf_counter()
            n_layers = merge_lora(learner.model, cfg.sleep.scale)
            _sync(dev)
            merges.append(time.perf_counter() - t0)
        out["nrem_merge"] = {"layers": n_layers, "ms": 1000 * min(merges), "ms_median": 1000 * statistics.median(merges),
                             "ms_all": [1000 * m for m in merges]}
    return out


def speed(args: argparse.Namespace) -> dict[str, Any]:
    from circadian_core.config import deep_merge
    from hal_sleep_wake.config import load_config

    overrides: dict[str, Any] = {}
    if args.batch_size:
        overrides["wake"] = {"batch_size": args.batch_size}
    base = deep_merge(_study(args.profile, args.study, args.variant), overrides)
    cfg = load_config(base)
    dev = torch.device(args.device)
    seq = _synthetic(cfg, args.seed).to(dev)
    impls = args.lora_impls.split(",") if cfg.uses_lora else [cfg.lora.impl]
    results = {impl: _one_impl(load_config(deep_merge(base, {"lora": {"impl": impl}})), seq, args, dev)
               for impl in impls}
    first = results[impls[0]]
    out: dict[str, Any] = {
        "config": f"params.yaml profiles.{args.profile}.studies.{args.study}, variant {args.variant}",
        "method": cfg.method,
        "scenario": args.scenario,
        "model_width": cfg.model.width,
        "image_shape": list(seq.item_shape),
        "batch_new": cfg.wake.batch_size,
        "replay_n": cfg.memory.replay_n,
        **first,
        "lora_impl": impls[0],
    }
    if len(impls) > 1:
        out["side_by_side"] = {impl: {"new_images_per_s": r["wake"]["new_images_per_s"],
                                      "merge_ms": r.get("nrem_merge", {}).get("ms")} for impl, r in results.items()}
        ref = results[impls[-1]]["wake"]["new_images_per_s"]
        out["side_by_side"]["speedup"] = first["wake"]["new_images_per_s"] / ref
    return out


def sequence_suite(args: argparse.Namespace) -> dict[str, Any]:
    """Every variant of the profile's hal study, one seed, one process: the issue's GPU wall-time target."""
    from circadian_core.seeding import seed_everything
    from hal_sleep_wake.studies import run
    from pipelines.dag import load_profile

    profile = load_profile(args.profile)
    study = profile.studies[args.study]
    artifacts = {n: ROOT / p for n, p in zip(study.needs, profile.artifact_paths(study.needs))}
    missing = [str(p) for p in artifacts.values() if not p.exists()]
    if missing:
        raise SystemExit(f"error: {missing[0]} is missing; build it first: python -m pipelines.scripts.build_artifact "
                         f"{Path(missing[0]).stem} --profile {args.profile}")
    cells = []
    t0 = time.perf_counter()
    for variant in study.variants:
        seed_everything(args.seed)
        t = time.perf_counter()
        res = run(study.config(variant), seed=args.seed, device=args.device, artifacts=artifacts, progress=False)
        cells.append({"variant": variant, "wall_s": time.perf_counter() - t, **res.metrics, **res.timings})
        shown = ", ".join(f"{k} {v:.3f}" for k, v in res.metrics.items() if k.endswith("_acc") and v is not None)
        print(f"{args.study}/{variant} seed {args.seed}: {shown} ({cells[-1]['wall_s']:.1f}s)", flush=True)
    wall = time.perf_counter() - t0
    return {"profile": args.profile, "seed": args.seed, "cells": cells, "wall_s": wall, "target_wall_s": 600.0,
            "meets_target": bool(wall < 600.0)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=["speed", "sequence"], default="speed")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--profile", default="mini", help="params.yaml profile whose hal config is used")
    ap.add_argument("--study", default="hal", help="params.yaml study (hal, hal_seqcl, hal_extended)")
    ap.add_argument("--variant", default="sleep", help="variant of the study (speed suite)")
    ap.add_argument("--scenario", default="task", choices=["task", "class", "one-head"])
    ap.add_argument("--lora-impls", default="weight,peft", help="LoRA implementations timed side by side")
    ap.add_argument("--batch-size", type=int, default=0, help="new samples per wake step (0: the profile's)")
    ap.add_argument("--steps", type=int, default=30, help="timed wake steps per repeat")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (a DAG cell uses 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "hal.json"))
    args = ap.parse_args(argv)

    from circadian_core.device import pick_device
    from circadian_core.record import benchmark_header, write_json_atomic

    args.device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]  # other processes disturb CPU timings: say how busy the machine was
    t0 = time.perf_counter()
    result = speed(args) if args.suite == "speed" else sequence_suite(args)
    command = "python benchmarks/hal.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = {
        **benchmark_header(f"hal/{args.suite}", command, args.device, load_before=load_before, started=t0),
        **result,
    }
    path = write_json_atomic(args.out, out)
    if args.suite == "speed":
        w = out["wake"]
        merge = out.get("nrem_merge")
        print(f"wake ({out['lora_impl'] if out['method'] == 'hal' else out['method']}): {w['new_images_per_s']:.0f} new "
              f"images/s ({w['steps_per_s']:.1f} steps/s of {out['batch_new']})"
              + (f"; NREM merge of {merge['layers']} layers: {merge['ms']:.1f} ms" if merge else ""))
        for impl, r in out.get("side_by_side", {}).items():
            if impl != "speedup":
                print(f"  {impl}: {r['new_images_per_s']:.0f} new images/s")
        if "side_by_side" in out:
            print(f"  speedup {out['side_by_side']['speedup']:.2f}x")
    else:
        print(f"{len(out['cells'])} cells in {out['wall_s']:.0f}s (target {out['target_wall_s']:.0f}s)")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
