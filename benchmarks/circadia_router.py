"""Routing and redaction cost on megabyte pastes: is the router linear?

For each input (minified JavaScript, one long word, blank lines, digits, 2 KB and 1 MB of ``[``)
at sizes 250 KB and 1 MB, the best of ``--repeats`` CPU times of

- ``classify_text`` (the router's patterns on the whole text),
- ``route`` (redaction of the first ``max_message_chars`` + margin, the cap, classification),
- ``redact`` (the full redactor on the whole text, what a capless caller would pay),

and the ratio 1 MB / 250 KB of each (linear: ~4; quadratic: ~16). JSON in
``results/benchmarks/circadia_router.json``. Before the fix, ``classify_text`` on 1 MB of
minified code took 2.2 s and 2 KB of ``[`` raised RecursionError.

    python benchmarks/circadia_router.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# python puts this script's folder first on sys.path, where benchmarks/circadia.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def minified_js(n: int, seed: int = 0) -> str:
    r = random.Random(seed)
    parts = ['function a(b){return b+1};', 'if(x){y=z(1,2)}else{q=[1,2,{"k":"v"}]};', 'var t="abc";',
             'for(var i=0;i<n;i++){s+=i};', 'a.b.c.d=e.f(g);', 'x=>x*2;', '{"key":"value","password":"x"},']
    out, size = [], 0
    while size < n:
        out.append(r.choice(parts))
        size += len(out[-1])
    return "".join(out)[:n]


INPUTS = {
    "minified_js": minified_js,
    "one_long_word": lambda n: "a" * n,
    "blank_lines": lambda n: "\n" * n,
    "digits": lambda n: ("1 " * n)[:n],
    "brackets": lambda n: "[" * n,
}


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "circadia_router.json"))
    args = ap.parse_args(argv)

    from circadia.journal import Turn
    from circadia.redaction import redact
    from circadia.router import RouterConfig, classify_text, route
    from circadian_core.record import benchmark_header, write_json_atomic

    cfg = RouterConfig()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    redact("warm up: password=Zq8v2LmN4pR7xT1k")  # imports detect-secrets' plugins once
    rows: dict[str, Any] = {}
    for name, make in INPUTS.items():
        row: dict[str, Any] = {}
        for size in (250_000, 1_000_000):
            text = make(size)
            turn = Turn(id="t", messages=[{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}])
            row[str(size)] = {
                "classify_s": best(lambda text=text: classify_text(text, cfg), args.repeats),
                "route_s": best(lambda turn=turn: route(turn, cfg), args.repeats),
                "redact_s": best(lambda text=text: redact(text), 1),
            }
        for key in ("classify_s", "route_s", "redact_s"):
            small, big = row["250000"][key], row["1000000"][key]
            row[f"ratio_{key}"] = big / small if small > 0 else None
        rows[name] = row
    two_kb = Turn(id="t", messages=[{"role": "user", "content": "[" * 2048}, {"role": "assistant", "content": "ok"}])
    _, dec = route(two_kb, cfg)
    command = "python benchmarks/circadia_router.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = {**benchmark_header("circadia_router", command, "cpu", load_before=load_before, started=t0),
           "max_message_chars": cfg.max_message_chars, "inputs": rows,
           "two_kb_brackets": {"quarantined": dec.quarantine, "reasons": dec.reasons}}
    path = write_json_atomic(args.out, out)
    js = rows["minified_js"]["1000000"]
    print(f"1 MB minified code: classify {js['classify_s']:.3f} s, route {js['route_s']:.3f} s, full redact "
          f"{js['redact_s']:.2f} s; worst 1MB/250KB ratio "
          f"{max(r[k] for r in rows.values() for k in r if k.startswith('ratio_') and r[k]):.1f} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
