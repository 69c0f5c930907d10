"""Is an adapter folder on disk usable? Checked before any model is loaded.

:func:`check_adapter` reads an adapter (peft: ``adapter_config.json`` + ``adapter_model.safetensors``;
mlx-lm: ``adapter_config.json`` + ``adapters.safetensors``) the cheap way first - the config must
be a JSON object, the safetensors header must parse and the file must be as long as the header
says (a truncated copy is caught without reading the tensors) - and then reads the tensors and
checks every value is finite. It returns an :class:`AdapterProblem` (``kind`` ``"corrupt"`` or
``"nonfinite"``, and a message naming the file and what is wrong) or None.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

WEIGHT_FILES = ("adapter_model.safetensors", "adapters.safetensors")


@dataclass(frozen=True)
class AdapterProblem:
    kind: str  # "corrupt" (missing, truncated, unreadable) | "nonfinite" (NaN or infinite values)
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _safetensors_header(path: Path) -> tuple[dict, int] | str:
    """(header, data bytes it declares) or what is wrong with the file."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"truncated ({size} bytes; not even a safetensors header)"
        (n,) = struct.unpack("<Q", head)
        if n > size - 8 or n > 100_000_000:
            return f"truncated or not a safetensors file (header of {n} bytes in a {size}-byte file)"
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            return f"unreadable safetensors header ({err})"
    if not isinstance(header, dict):
        return "unreadable safetensors header (not a JSON object)"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    need = 8 + n + (max(ends) if ends else 0)
    if size < need:
        return f"truncated ({size} of {need} bytes)"
    return header, need - 8 - n


def _nonfinite(path: Path) -> str | None:
    import torch
    from safetensors.torch import load_file

    for name, tensor in load_file(str(path)).items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            return f"tensor {name} holds {bad} non-finite value(s) (NaN or infinite)"
    return None


def check_adapter(folder: str | Path, *, values: bool = True) -> AdapterProblem | None:
    """What is wrong with the adapter in ``folder`` (None: nothing). ``values=False`` skips reading
    the tensors (structure only)."""
    folder = Path(folder)
    if not folder.is_dir():
        return AdapterProblem("corrupt", folder, "the adapter folder is missing")
    config = folder / "adapter_config.json"
    if not config.exists():
        return AdapterProblem("corrupt", config, "missing")
    try:
        cfg = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return AdapterProblem("corrupt", config, f"not valid JSON ({err})")
    if not isinstance(cfg, dict):
        return AdapterProblem("corrupt", config, "must be a JSON object")
    weights = next((folder / w for w in WEIGHT_FILES if (folder / w).exists()), None)
    if weights is None:
        return AdapterProblem("corrupt", folder, f"no weights ({' or '.join(WEIGHT_FILES)})")
    header = _safetensors_header(weights)
    if isinstance(header, str):
        return AdapterProblem("corrupt", weights, header)
    if values:
        try:
            why = _nonfinite(weights)
        except Exception as err:
            return AdapterProblem("corrupt", weights, f"unreadable tensors ({type(err).__name__}: {err})")
        if why:
            return AdapterProblem("nonfinite", weights, why)
    return None
