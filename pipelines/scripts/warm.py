"""Warm start for cells: import torch & co. once, then fork one child per cell.

Every cell is still its own job (Snakemake or DVC schedules it, it writes its own record and log,
``snakemake <one record>`` reruns exactly that cell), but on one machine its Python start-up and
the import of torch, transformers and the study modules are paid once per reproduction instead of
once per cell (73 of the mini profile's cells import torch, ~2-4 s each).

    python -m pipelines.scripts.warm run -- snakemake --cores all    # what `make repro` does

``run`` starts a server on a Unix socket, runs the command with ``CIRCADIAN_WARM=<socket>`` in its
environment and stops the server when the command ends. ``run_cell`` and ``build_artifact`` ask
the server first (:func:`delegate`): it forks a child that takes over the job's stdin/stdout/stderr
(passed over the socket), working directory and environment, and runs the same ``main(argv)`` the
job would have run; the exit status comes back to the job. Without the variable, or when the
server cannot be reached (a cluster node, a stopped server), the job runs in its own process as
before. A killed job closes its socket and its child exits at once, so nothing keeps writing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ENV = "CIRCADIAN_WARM"
ALLOWED = ("pipelines.scripts.run_cell", "pipelines.scripts.build_artifact")
HEAVY = ("numpy", "scipy", "torch", "torchvision", "transformers", "peft", "sklearn")
_RC = struct.Struct("!i")


def delegate(module: str, argv: Sequence[str] | None) -> int | None:
    """Run ``module.main(argv)`` in the warm server's fork; None when no server is reachable."""
    path = os.environ.get(ENV)
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    with conn:
        msg = json.dumps({"module": module, "argv": list(sys.argv[1:] if argv is None else argv),
                          "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        sys.stdout.flush()
        sys.stderr.flush()
        socket.send_fds(conn, [_RC.pack(len(msg)) + msg], [0, 1, 2])
        data = b""
        while len(data) < _RC.size:
            chunk = conn.recv(_RC.size - len(data))
            if not chunk:
                print(f"error: the warm cell server ({path}) lost this job; rerun it (or unset {ENV})", file=sys.stderr)
                return 1
            data += chunk
    return _RC.unpack(data)[0]


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    (size,) = _RC.unpack(data[: _RC.size])
    body = data[_RC.size:]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("client went away")
        body += chunk
    return json.loads(body), fds


def _watch(conn: socket.socket) -> None:
    """Exit the child as soon as its job's end of the socket closes (the job was killed)."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    os._exit(143)


def _child(conn: socket.socket, listener: socket.socket, allow: Sequence[str]) -> None:
    """In the forked child: become the job (fds, cwd, env, argv), run it, report the exit status."""
    listener.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    rc = 1
    try:
        req, fds = _recv_request(conn)
        sys.stdout.flush()
        sys.stderr.flush()
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update({k: v for k, v in req["env"].items() if k != ENV})
        if req["module"] not in allow:
            raise ValueError(f"module {req['module']!r} may not run in the warm server")
        threading.Thread(target=_watch, args=(conn,), daemon=True).start()
        sys.argv = [req["module"], *req["argv"]]
        try:
            rc = int(importlib.import_module(req["module"]).main(req["argv"]) or 0)
        except SystemExit as exc:  # argparse errors and explicit exits
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:
            import traceback

            traceback.print_exc()
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            rc = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(_RC.pack(rc))
        os._exit(rc)


def _reap(*_: object) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def preload(extra: Sequence[str] = ()) -> list[str]:
    """Import the heavy libraries and the study/artifact entry modules of the active profile."""
    loaded = []
    names = list(HEAVY) + list(extra)
    with contextlib.suppress(Exception):
        from pipelines.dag import load_profile

        profile = load_profile()
        names += sorted({e.entry.partition(":")[0] for e in [*profile.studies.values(), *profile.artifacts.values()]})
    for name in names:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:
            continue
    return loaded


def serve(path: str, *, ready: Path | None = None, allow: Sequence[str] = ALLOWED) -> None:
    """Listen on ``path`` and fork a child per job (only modules in ``allow``) until SIGTERM."""
    loaded = preload(allow)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(64)

    def stop(*_: object) -> None:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGCHLD, _reap)
    if ready is not None:
        ready.write_text(json.dumps(loaded))
    while True:
        try:
            conn, _ = listener.accept()
        except InterruptedError:
            continue
        pid = os.fork()
        if pid == 0:
            _child(conn, listener, allow)
        conn.close()


def run(command: Sequence[str], *, timeout: float = 120.0) -> int:
    """Run ``command`` with a warm server beside it; the server stops when the command ends."""
    with tempfile.TemporaryDirectory(prefix="circadian-warm-") as tmp:
        sock, ready = os.path.join(tmp, "cells.sock"), Path(tmp, "ready")
        server = subprocess.Popen([sys.executable, "-m", "pipelines.scripts.warm", "serve", sock, "--ready", str(ready)])
        try:
            t0 = time.monotonic()
            while not ready.exists():
                if server.poll() is not None or time.monotonic() - t0 > timeout:
                    print("warning: the warm cell server did not start; cells start cold", file=sys.stderr)
                    break
                time.sleep(0.05)
            else:
                print(f"warm cell server ready ({time.monotonic() - t0:.1f}s, {len(json.loads(ready.read_text()))} modules)",
                      file=sys.stderr)
            env = {**os.environ, ENV: sock} if ready.exists() else dict(os.environ)
            return subprocess.call(list(command), env=env)
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)
            if server.poll() is None:
                server.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run a command (after --) with a warm cell server beside it")
    p_run.add_argument("command", nargs=argparse.REMAINDER)
    p_serve = sub.add_parser("serve", help="serve on a socket until SIGTERM (what `run` starts)")
    p_serve.add_argument("socket")
    p_serve.add_argument("--ready", type=Path)
    p_serve.add_argument("--allow", action="append", default=[], help="a further module the server may run (tests)")
    args = ap.parse_args(argv)
    if args.cmd == "serve":
        serve(args.socket, ready=args.ready, allow=(*ALLOWED, *args.allow))
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("run needs a command after --")
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
