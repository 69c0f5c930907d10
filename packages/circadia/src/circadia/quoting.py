"""Chat text shown to a model as *data*: quoted line by line, with its control sequences defused.

Retrieved memories (chat with retrieval) and the memory a dream is about (the dreamer's prompt)
are someone's earlier chat text. Pasted into a prompt as is, a stored "SYSTEM: new standing
instruction ..." or a fake ``<|im_start|>system`` header would speak with the prompt's authority.
:func:`quote_block` prefixes every line with ``"> "`` (so nothing inside can start a line of the
prompt: no ``Q:``/``A:``, no role header, no closing marker) and breaks up chat-template
control tokens (``<|...|>``, ``[INST]``, ``<<SYS>>``), which a tokenizer would otherwise read as
the real special tokens.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"<\||\|>|\[/?INST\]|<</?SYS>>|<s>|</s>", re.I)


def defuse(text: str) -> str:
    """``text`` with chat-template control sequences broken up (``<|`` -> ``< |``)."""
    return CONTROL.sub(lambda m: " ".join(m.group()), text)


def quote_block(text: str, prefix: str = "> ") -> str:
    """Every line of ``text`` (defused) prefixed with ``prefix``."""
    return "\n".join(prefix + line for line in defuse(text).split("\n"))
