"""MLX sleep-step benchmark: training tokens/s of circadia's MLX backend vs a bare mlx-lm loop.

    python benchmarks/circadia_mlx.py                      # embedded SmolLM2-135M, 6 steps (minutes on CPU)
    python benchmarks/circadia_mlx.py --model tiny --iters 10
    CIRCADIA_MLX_BLAS=0 python benchmarks/circadia_mlx.py  # mlx[cpu]'s own reference BLAS (Linux)

One night's batches (the shipped day logs + 20% old-core replay, ``build_batches``, seeded) are
trained three times, each from a freshly loaded base model with the same LoRA (same seed, so the
same initial A matrices):

1. ``circadia``: ``MLXBackend.train`` as the nightly cycle runs it (per-step sync, non-finite
   check, gradient clipping, ``lr_at`` schedule; ``mx.compile`` only on a GPU);
2. ``circadia_compiled``: the same with ``MLXBackend(compile=True)``;
3. ``mlx_lm``: ``mlx_lm.tuner.trainer.train`` (its compiled step, no clipping, mlx's warmup+cosine
   schedule) fed the identical pre-tokenized batches (widths padded to a multiple of 32, as its own
   ``iterate_batches`` pads them) through a custom ``iterate_batches`` and the same loss (mean NLL
   per assistant token).

Tokens are real (non-pad) tokens of each batch, as ``TrainReport.tokens`` counts them.
``tokens_per_s`` includes the first step (compilation, warm-up); ``steady_tokens_per_s`` leaves
it out; ``--repeats`` runs the methods round-robin and reports medians. The first ``mx.compile``
of a graph builds C++ kernels that mlx caches on disk, so the first compiled method of a first-ever
run pays for it. Writes JSON (default results/benchmarks/circadia_mlx.json).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# python puts this script's folder first on sys.path, where benchmarks/circadia.py would shadow the
# circadia package: drop it, and put the repository root in its place
sys.path[:] = [str(ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

from circadia.backends.mlx_backend import MLXBackend, add_lora, load_mlx, mean_nll, mx, pad_width  # noqa: E402
from circadia.backends.mlx_blas import blas_in_use  # noqa: E402


class _Timed(list):
    """A list that records the time each item is handed out (= the start of each training step)."""

    def __iter__(self):
        self.starts: list[float] = []
        for item in super().__iter__():
            self.starts.append(time.perf_counter())
            yield item


def _timing(starts: list[float], end: float, tokens: list[int]) -> dict[str, float]:
    wall = end - starts[0]
    out = {
        "wall_s": round(wall, 3),
        "first_step_s": round((starts[1] if len(starts) > 1 else end) - starts[0], 3),
        "tokens_per_s": round(sum(tokens) / wall, 2),
    }
    if len(starts) > 1:
        out["steady_tokens_per_s"] = round(sum(tokens[1:]) / (end - starts[1]), 2)
    return out


def night_batches(iters: int, batch_size: int, seed: int):
    from circadia.backends.base import Example
    from circadia.data import day_paths, old_core
    from circadia.sleep.batches import build_batches

    memories = []
    for path in day_paths():
        with open(path, encoding="utf-8") as fh:
            memories += [Example(json.loads(line)["messages"]) for line in fh if line.strip()]
    return build_batches(
        memories, [], old_core("replay"), iters=iters, batch_size=batch_size, replay_fraction=0.2, seed=seed
    )


def run_circadia(model_dir: Path, batches, cfg, *, compile: bool, tokens: list[int]) -> dict[str, Any]:
    backend = MLXBackend(compile=compile)
    backend.load(model_dir)
    timed = _Timed(batches)
    with tempfile.TemporaryDirectory() as tmp:
        report = backend.train(timed, cfg, Path(tmp) / "adapter")
    end = time.perf_counter()
    assert report.tokens == sum(tokens), (report.tokens, sum(tokens))
    return {**_timing(timed.starts, end, tokens), "losses": [round(x, 4) for x in report.losses]}


def run_mlx_lm(model_dir: Path, arrays, cfg, *, tokens: list[int]) -> dict[str, Any]:
    import mlx.optimizers as optim
    from mlx_lm.tuner.callbacks import TrainingCallback
    from mlx_lm.tuner.trainer import TrainingArgs, train
    from mlx_lm.tuner.utils import build_schedule

    model, _ = load_mlx(model_dir)
    add_lora(model, cfg)  # the same LoRA (and initial A) as MLXBackend.train
    schedule = build_schedule(
        {
            "name": "cosine_decay",
            "arguments": [cfg.lr, max(1, len(arrays) - cfg.warmup), cfg.lr * cfg.min_lr_ratio],
            "warmup": cfg.warmup,
        }
    )
    optimizer = optim.AdamW(learning_rate=schedule, weight_decay=cfg.weight_decay, bias_correction=True)
    starts: list[float] = []
    losses: list[float] = []

    def iterate_batches(dataset, batch_size, max_seq_length, loop=False, seed=None, comm_group=None):
        for ids, mask, n in dataset:
            starts.append(time.perf_counter())
            yield mx.array(ids), mx.array(mask), mx.array(n)

    def loss(model, ids, mask, n):
        return mean_nll(model, ids, mask), n

    class Losses(TrainingCallback):
        def on_train_loss_report(self, info):
            losses.append(round(float(info["train_loss"]), 4))

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArgs(
            batch_size=cfg.batch_size,
            iters=len(arrays),
            steps_per_report=1,
            steps_per_eval=10**9,
            steps_per_save=10**9,
            max_seq_length=cfg.max_seq_len,
            adapter_file=str(Path(tmp) / "adapters.safetensors"),
        )
        train(
            model,
            optimizer,
            arrays,
            args=args,
            loss=loss,
            iterate_batches=iterate_batches,
            training_callback=Losses(),
        )
    end = time.perf_counter()
    return {**_timing(starts, end, tokens), "losses": losses}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="embedded", help="'embedded' (SmolLM2-135M), 'tiny', or an HF folder"
    )
    parser.add_argument("--iters", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per method, interleaved; medians reported"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["circadia", "circadia_compiled", "mlx_lm"])
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "circadia_mlx.json"))
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from circadia.backends.base import TrainConfig, collate, pad_id_of
    from circadia.models import make_tiny_model, resolve_model

    tmp_models = tempfile.TemporaryDirectory()
    if args.model == "tiny":
        model_dir = make_tiny_model(Path(tmp_models.name) / "tiny", seed=args.seed)
    else:
        model_dir = resolve_model(args.model)
    cfg = TrainConfig(
        iters=args.iters,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=min(2, max(0, args.iters - 1)),
        lora_rank=args.lora_rank,
        lora_alpha=2.0 * args.lora_rank,
        max_seq_len=args.max_seq_len,
        seed=args.seed,
    )
    batches = night_batches(args.iters, args.batch_size, args.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    arrays = []  # for mlx-lm: widths bucketed to 32 columns as its own iterate_batches does
    for examples in batches:
        b = collate(tokenizer, examples, cfg.max_seq_len)
        ids, mask = pad_width(b["input_ids"], b["loss_mask"], multiple=32, pad_id=pad_id_of(tokenizer))
        arrays.append((ids, mask, int(b["n_tokens"])))
    tokens = [n for _, _, n in arrays]

    load_before = round(os.getloadavg()[0], 2)  # other processes on the machine skew every number
    methods: dict[str, Any] = {}
    runs = {
        "circadia": lambda: run_circadia(model_dir, batches, cfg, compile=False, tokens=tokens),
        "circadia_compiled": lambda: run_circadia(model_dir, batches, cfg, compile=True, tokens=tokens),
        "mlx_lm": lambda: run_mlx_lm(model_dir, arrays, cfg, tokens=tokens),
    }
    all_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in runs if name not in args.skip}
    for repeat in range(args.repeats):  # interleaved, so a change in machine load hits every method
        for name in all_runs:
            print(f"[circadia_mlx] {name} (run {repeat + 1}/{args.repeats}) ...", file=sys.stderr, flush=True)
            all_runs[name].append(runs[name]())
            gc.collect()
            print(f"[circadia_mlx] {name}: {json.dumps(all_runs[name][-1])}", file=sys.stderr, flush=True)
    for name, results in all_runs.items():
        methods[name] = {
            key: round(float(np.median([r[key] for r in results])), 3)
            for key in results[0]
            if key != "losses" and all(key in r for r in results)
        }
        methods[name]["losses"] = results[0]["losses"]
        if len(results) > 1:
            methods[name]["runs"] = results

    ratios = {}
    if "circadia" in methods and "mlx_lm" in methods:
        for key in ("tokens_per_s", "steady_tokens_per_s"):
            if key in methods["circadia"] and key in methods["mlx_lm"]:
                ratios[f"circadia_over_mlx_lm_{key}"] = round(
                    methods["circadia"][key] / methods["mlx_lm"][key], 3
                )
    record = {
        "benchmark": "circadia_mlx",
        "command": "python benchmarks/circadia_mlx.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model if args.model != "embedded" else "SmolLM2-135M-Instruct (embedded, fp32)",
        "config": cfg.to_json(),
        "steps": len(batches),
        "repeats": args.repeats,
        "tokens": sum(tokens),
        "tokens_per_step": tokens,
        "methods": methods,
        "ratios": ratios,
        "environment": {
            "mlx_device": str(mx.default_device()),
            "blas": blas_in_use(),
            "mlx": metadata.version("mlx"),
            "mlx_lm": metadata.version("mlx-lm"),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}",
            "cpus": os.cpu_count(),
            "load_avg_1m_before_after": [load_before, round(os.getloadavg()[0], 2)],
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(
        json.dumps(
            {
                "methods": {
                    k: {kk: v[kk] for kk in v if kk not in ("losses", "runs")} for k, v in methods.items()
                },
                **ratios,
            },
            indent=1,
        )
    )
    print(f"wrote {out}", file=sys.stderr)
    tmp_models.cleanup()
    return record


if __name__ == "__main__":
    main()
