"""``circadia``: chat by day, sleep by night.

    circadia chat      [--rag]            talk to the current model; every turn -> memories.jsonl
    circadia remember  LOG.jsonl ...      import chat logs (bad lines quarantined with line numbers)
    circadia cycle                        one night: pre-eval, route, dream, train, post-eval, decide
    circadia nights N                     N simulated days + nights on the shipped day logs
    circadia status                       current adapter, nights, memories
    circadia rollback [VERSION]           make an earlier accepted version current (0: the base model)

Every command takes ``--home`` (default ``$CIRCADIA_HOME`` or ./circadia-home). Settings come
from ``<home>/config.json|yaml``, then ``--config FILE``, then flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from circadia.home import Home, default_home
from circadian_core.config import ConfigError


def _base_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="circadia", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    ap.add_argument("--home", type=Path, default=None, help="circadia home folder (default $CIRCADIA_HOME or ./circadia-home)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def model_flags(p):
        p.add_argument("--config", type=Path, help="JSON/YAML night config (see circadia.config.NightConfig)")
        p.add_argument("--model", help="model folder, 'embedded' (SmolLM2-135M-Instruct) or a hub name")
        p.add_argument("--backend", choices=["torch", "mlx"])
        p.add_argument("--device", help="auto, cpu, cuda, mps (torch) or mlx")
        p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"],
                       help="base weights (auto: bfloat16 on a GPU, float32 on CPU)")
        p.add_argument("--threads", type=int, help="CPU threads of this process (BLAS, torch)")
        p.add_argument("--seed", type=int)

    def night_flags(p):
        model_flags(p)
        p.add_argument("--iters", type=int, help="training steps per night")
        p.add_argument("--batch-size", type=int)
        p.add_argument("--lr", type=float)
        p.add_argument("--max-seq-len", type=int)
        p.add_argument("--replay-fraction", type=float)
        p.add_argument("--no-dreams", action="store_true", help="skip the REM bursts")
        p.add_argument("--no-routing", action="store_true", help="store nothing for retrieval (all to LoRA)")
        p.add_argument("--no-rollback", action="store_true", help="accept every night")
        p.add_argument("--merge", action="store_true", help="merge accepted adapters into the base weights")
        p.add_argument("--store", choices=["auto", "chroma", "numpy"])
        p.add_argument("--embedder", choices=["auto", "minilm", "hashing"])
        p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("chat", help="chat with the current model (reads stdin; /exit or EOF ends)")
    model_flags(p)
    p.add_argument("--rag", action="store_true", help="retrieve past turns from the store into the prompt")
    p.add_argument("--rag-verbose", action="store_true", help="print what was retrieved")
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--min-score", type=float, default=0.2)
    p.add_argument("--max-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--system", help="a system prompt for the session")
    p.add_argument("--session", default="", help="session name recorded with each turn")
    p.add_argument("--history", type=int, default=4, help="earlier turns of this session kept as context")
    p.add_argument("--store", choices=["auto", "chroma", "numpy"])
    p.add_argument("--embedder", choices=["auto", "minilm", "hashing"])

    p = sub.add_parser("remember", help="import chat logs (JSONL: {'messages': [...]} or {'user','assistant'})")
    p.add_argument("logs", nargs="+", type=Path)

    p = sub.add_parser("cycle", help="sleep one night on the new memories")
    night_flags(p)
    p.add_argument("--tag", default="")

    p = sub.add_parser("nights", help="simulate N days (shipped day logs) and nights")
    p.add_argument("n", type=int)
    night_flags(p)
    p.add_argument("--days", type=Path, help="a folder of dayNN.jsonl logs (default: the shipped ones)")

    sub.add_parser("status", help="show the home's state")

    p = sub.add_parser("rollback", help="make an earlier accepted version current (default: the one before)")
    p.add_argument("version", nargs="?", help="a night number (0 or 'base': the base model); default: the previous good version")
    return ap


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("circadia")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown (not installed)"


def _config_files(home: Home, args) -> list[Path]:
    files = [home.root / n for n in ("config.json", "config.yaml", "config.yml") if (home.root / n).exists()][:1]
    return files + ([args.config] if getattr(args, "config", None) else [])


def build_config(args, home: Home):
    """Home config file, then ``--config``, then flags; each file is checked on its own first, so
    an error names the file (and the key) it comes from."""
    from circadia.config import load_config_file, merged, night_config

    values: dict[str, Any] = {}
    for path in _config_files(home, args):
        data = load_config_file(path)
        night_config(data, where=str(path))
        values = merged(values, data)
    flags: dict[str, Any] = {}
    for key in ("model", "backend", "device", "dtype", "seed", "store", "embedder"):
        if getattr(args, key, None) is not None:
            flags[key] = getattr(args, key)
    train = {k: getattr(args, a) for k, a in (("iters", "iters"), ("batch_size", "batch_size"), ("lr", "lr"), ("max_seq_len", "max_seq_len"))
             if getattr(args, a, None) is not None}
    if train:
        flags["train"] = train
    if getattr(args, "replay_fraction", None) is not None:
        flags["replay_fraction"] = args.replay_fraction
    if getattr(args, "no_dreams", False):
        flags["dreams"] = {"enabled": False}
    if getattr(args, "no_routing", False):
        flags["router"] = {"enabled": False}
    if getattr(args, "no_rollback", False):
        flags["rollback"] = {"enabled": False}
    if getattr(args, "merge", False):
        flags["merge"] = True
    night_config(flags, where="command-line flags")
    return night_config(merged(values, flags), where="circadia config")


def cmd_chat(args, home: Home) -> int:
    from circadia.backends.base import make_backend
    from circadia.hippocampus import user_message_with_context
    from circadia.journal import Journal
    from circadia.recovery import usable_version
    from circadia.sleep.night import open_hippocampus, resolve_base

    cfg = build_config(args, home)
    home.init()
    state = home.load_state()
    version, problem = usable_version(home, state)  # before any model is loaded
    if problem is not None:
        print(f"warning: {problem}; chatting with {version.describe()} (the next night sets it aside)", file=sys.stderr)
        state.current_adapter, state.base_model = version.adapter, version.base_model
    base = resolve_base(home, state, cfg, None)
    adapter = home.resolve(state.current_adapter)
    backend = make_backend(cfg.backend, device=cfg.device, dtype=cfg.dtype)
    backend.load(base, adapter)
    store = open_hippocampus(home, cfg) if args.rag else None
    journal = Journal(home.memories)
    interactive = sys.stdin.isatty()
    print(f"circadia chat: {base.name}" + (f" + {adapter.name}" if adapter else "") + (" (retrieval on)" if store else "")
          + " - /exit to quit", file=sys.stderr)
    history: list[dict[str, str]] = []
    n = 0
    while True:
        if interactive:
            print("you> ", end="", flush=True, file=sys.stderr)
        line = sys.stdin.readline()
        if not line:
            break
        text = line.rstrip("\n")
        if text.strip() in ("/exit", "/quit"):
            break
        if not text.strip():
            continue
        prompt: list[dict[str, str]] = []
        if args.system:
            prompt.append({"role": "system", "content": args.system})
        hits = store.query(text, args.k) if store is not None else []
        if args.rag_verbose:
            for h in hits:
                print(f"  [retrieved {h.score:.2f}] {h.text[:120]!r}", file=sys.stderr)
        keep = history[-2 * args.history :] if args.history > 0 else []
        # retrieved memories: a quoted block inside the user's turn, never a system message
        prompt += keep + [user_message_with_context(text, hits, min_score=args.min_score)]
        reply = backend.generate(prompt, max_tokens=args.max_tokens, temperature=args.temperature, seed=cfg.seed + n)
        print(reply, flush=True)
        messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
            {"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        journal.record(messages, session=args.session, source="chat")
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        n += 1
    print(f"{n} turn(s) appended to {home.memories}", file=sys.stderr)
    return 0


def cmd_remember(args, home: Home) -> int:
    from circadia.journal import Journal, import_log

    home.init()
    journal = Journal(home.memories)
    total, bad = 0, 0
    for path in args.logs:
        if not path.exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
        count, res = import_log(path, journal)
        total += count
        bad += len(res.bad)
        print(f"{path}: {count} turn(s) remembered" + (f", {len(res.bad)} bad line(s) quarantined in {res.quarantine}" if res.bad else ""))
    print(f"{total} turn(s) appended to {home.memories}")
    return 0 if bad == 0 else 1


def cmd_cycle(args, home: Home) -> int:
    from circadia.sleep.night import run_night
    from circadia.sleep.record import NightStatus

    cfg = build_config(args, home)
    rec = run_night(home, cfg, tag=args.tag, log=_log_fn(args))
    print(json.dumps(_brief(rec), indent=2))
    return 0 if rec.status is not NightStatus.ABORTED_NAN else 3


def cmd_nights(args, home: Home) -> int:
    from circadia.simulate import simulate_nights

    cfg = build_config(args, home)
    days = sorted(args.days.glob("day*.jsonl")) if args.days else None
    recs = simulate_nights(home, args.n, cfg, days=days, log=_log_fn(args))
    for rec in recs:
        print(json.dumps(_brief(rec)))
    return 0


def cmd_status(args, home: Home) -> int:
    from circadia.journal import Journal
    from circadia.recovery import current_version, versions

    state = home.load_state()
    out = {"home": str(home.root), "nights": state.nights, "attempts": state.attempts,
           "current_adapter": state.current_adapter, "base_model": state.base_model,
           "version": current_version(home, state).night, "versions": [v.night for v in versions(home)],
           "memories": Journal(home.memories).count(), "consumed_lines": state.consumed_lines,
           "history": state.history[-10:]}
    print(json.dumps(out, indent=2))
    return 0


def cmd_rollback(args, home: Home) -> int:
    from circadia.home import HomeLock
    from circadia.recovery import rollback

    target = None
    if args.version is not None:
        if str(args.version).lower() == "base":
            target = 0
        else:
            try:
                target = int(str(args.version).removeprefix("night-"))
            except ValueError:
                print(f"error: VERSION is a night number (see `circadia status`) or 'base', got {args.version!r}", file=sys.stderr)
                return 2
    if not home.root.exists():
        print(f"error: {home.root} is not a circadia home", file=sys.stderr)
        return 2
    with HomeLock(home):
        v = rollback(home, target)
    print(f"now using {v.describe()}")
    return 0


def _log_fn(args):
    if getattr(args, "quiet", False):
        return None
    from circadia.sleep.context import stderr_log

    return stderr_log


def _brief(rec) -> dict[str, Any]:
    """The parts of a :class:`~circadia.sleep.record.NightRecord` worth printing."""
    full = rec.to_json()
    keys = ("night", "tag", "status", "reason", "rollback_reasons", "adapter", "pre", "post", "router", "dreams", "mix", "recall")
    out = {k: full[k] for k in keys if full.get(k) is not None}
    for k in ("pre", "post"):
        if k in out:
            out[k] = {kk: vv for kk, vv in out[k].items() if kk != "harness_per_category"}
    out["seconds"] = round(rec.timings.total, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = _base_parser().parse_args(argv)
    if getattr(args, "threads", None):
        from circadian_core.runner import set_threads

        set_threads(args.threads)
    home = Home(args.home or default_home())
    handlers = {"chat": cmd_chat, "remember": cmd_remember, "cycle": cmd_cycle, "nights": cmd_nights, "status": cmd_status,
                "rollback": cmd_rollback}
    try:
        return handlers[args.cmd](args, home)
    except (ConfigError, FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
