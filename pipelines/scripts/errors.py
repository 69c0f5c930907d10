"""One line on stderr per failure of a stage script, naming the file or key and the fix.

Stage scripts (run_cell, build_artifact, aggregate, figures, build_paper) end in :func:`fail`:
the user sees ``error: <what is wrong>; <how to fix it>`` and the exit status; the traceback only
with ``--debug`` or ``CIRCADIAN_DEBUG=1``. Known faults (a missing device, a dataset not here
offline, a checksum mismatch, an unknown entry, a YAML error, a corrupt input file) carry their fix
in their message; anything else is named by its type, with the debug hint.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import traceback
import zipfile
from collections.abc import Callable, Sequence

from circadian_core.config import ConfigError
from pipelines.dag import Profile, load_profile


class InputError(ValueError):
    """A fault of an input file the user can fix (a stale or misplaced record, ...); the message says how."""


DEBUG_ENV = "CIRCADIAN_DEBUG"
DEBUG_HINT = f"rerun with --debug (or {DEBUG_ENV}=1) for the traceback"
# Exceptions whose message already names the file or key and the fix.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, InputError, FileNotFoundError, ModuleNotFoundError)
# What a truncated or overwritten input file raises while being read.
CORRUPT_INPUT: tuple[type[BaseException], ...] = (zipfile.BadZipFile, pickle.UnpicklingError, EOFError)


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=os.environ.get(DEBUG_ENV, "") not in ("", "0"),
        help=f"show the traceback of a failure (also {DEBUG_ENV}=1)",
    )


def _is_corrupt_input(err: BaseException) -> bool:
    if isinstance(err, CORRUPT_INPUT):
        return True
    text = str(err)
    # numpy.load of a damaged .npz/.npy, torch.load of a truncated checkpoint
    return isinstance(err, (ValueError, RuntimeError, OSError)) and any(
        hint in text for hint in ("allow_pickle", "PytorchStreamReader", "failed finding central directory",
                                  "invalid load key", "Failed to interpret file")
    )


def _damage(err: BaseException, message: str) -> str:
    """What a damaged file looks like, without numpy's advice to unpickle an untrusted file."""
    if "allow_pickle" in message or "invalid load key" in message:
        return "not an .npz/.npy/checkpoint file"
    if isinstance(err, zipfile.BadZipFile) or "central directory" in message:
        return "a truncated or damaged zip archive"
    if isinstance(err, EOFError):
        return "ends early (truncated)"
    return f"{type(err).__name__}: {message[:160]}"


def explain(err: BaseException, inputs: Sequence[str] = (), context: str = "") -> str:
    """The one-line message for ``err``.

    ``inputs`` are the files the failed step read (named when one of them is damaged); ``context``
    names the step (``cell hal/full/seed0``) for errors whose message does not.
    """
    message = " ".join(str(err).split()) or type(err).__name__
    if _is_corrupt_input(err):
        if len(inputs) == 1:
            what, fix = inputs[0], f"delete it and rebuild it (snakemake {inputs[0]})"
        elif inputs:
            what, fix = f"one of the inputs ({', '.join(inputs)})", "delete the damaged one and rebuild it (snakemake <its path>)"
        else:
            what, fix = "an input file", DEBUG_HINT + " to see which"
        return f"{what} is damaged or not in the expected format ({_damage(err, message)}); {fix}"
    if isinstance(err, USER_ERRORS):
        return message
    module = type(err).__module__
    # errors raised by our own packages with a message naming the fix (device, datasets, checksums, entries)
    if module.startswith(("circadian_core", "circadian_vision", "hal_sleep_wake", "circadia", "pipelines")):
        return message
    where = f"{context}: " if context else ""
    return f"{where}{type(err).__name__}: {message} ({DEBUG_HINT})"


def exit_status(err: BaseException) -> int:
    """2 for a fault of the input the user can fix (config, paths, packages), 1 otherwise."""
    return 2 if isinstance(err, USER_ERRORS) else 1


def fail(err: BaseException, debug: bool, inputs: Sequence[str] = (), context: str = "") -> int:
    """Print ``err`` as one line (its traceback first, under ``debug``) and return the exit status."""
    if debug:
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    print(f"error: {explain(err, inputs, context)}", file=sys.stderr)
    return exit_status(err)


def profile_main(description: str | None, stage: Callable[[Profile], int], argv: list[str] | None = None) -> int:
    """The ``main`` of a stage script run per profile (aggregate, figures, build_paper): ``--profile`` and
    ``--debug``, then ``stage`` on the loaded profile; any failure is one line on stderr (:func:`fail`)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--profile")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    try:
        return stage(load_profile(args.profile))
    except Exception as err:  # one line on stderr; the traceback under --debug
        return fail(err, args.debug)
