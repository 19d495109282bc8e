"""Structural rules: codes found by the shape of the talk rather than its words (a minimal response).

Kept apart from the matching engine, and free of spaCy, so that checking a codebook names the known structures
and their settings without loading a language pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _positive_int(value: Any) -> str:
    return "" if isinstance(value, int) and not isinstance(value, bool) and value > 0 else "must be a whole number > 0"


def _one_of(*options: str) -> Callable[[Any], str]:
    return lambda value: "" if value in options else "must be one of " + ", ".join(options)


def _role(value: Any) -> str:
    from pipeline.codebook import ROLES

    return "" if value in ROLES or value == "any" else "must be a role (" + ", ".join(ROLES) + ") or any"


_WH = re.compile(r"\b(?:what|what's|how|how's|why|where|when|who|which|whose)\b", re.IGNORECASE)
_INVITATION = re.compile(
    r"^\W*(?:(?:so|and|okay|ok|well|now)\W+)*(?:can you |could you |would you |will you |please )?"
    r"(?:tell me|say (?:a bit |a little )?more|talk (?:me )?(?:a bit |a little )?(?:more )?about|describe|"
    r"walk me through|"
    r"take me (?:there|through|back)|go on|help me understand|i wonder (?:what|how|if|whether|why)|"
    r"i'm (?:curious|wondering) (?:about|what|how|if|whether|why))",
    re.IGNORECASE,
)


def is_question(text: str, open_only: bool) -> bool:
    """Whether a turn ends by asking the other to speak (``open_only``: to say more than yes or no).

    The last sentence with a question mark counts as open when a wh-word comes in its first words ("So, what
    was that like?"); a sentence without one counts when it invites, like "Tell me more about that."
    """
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    if not sentences:
        return False
    asked = [s for s in sentences if "?" in s]
    if not open_only:
        return bool(asked)
    if asked:
        head = " ".join(re.split(r"\s+", asked[-1])[:5])
        if _WH.search(head) or _INVITATION.search(asked[-1]):
            return True
    return bool(_INVITATION.search(sentences[-1]))


@dataclass
class Structure:
    """A structural rule: a function of a unit and its parsed text, with the settings it accepts."""

    find: Callable[[Any, Any, dict], list[tuple[int, int]]]  # (unit, doc, params) -> token spans [start, end)
    params: dict[str, Callable[[Any], str]]  # name -> check returning '' or what is wrong
    defaults: dict[str, Any]
    doc: str


def _minimal_response(unit, doc, params: dict) -> list[tuple[int, int]]:
    """A turn of at most ``max_words`` words right after a (open) question by ``after_role``."""
    if unit.prev_text is None or not len(doc):
        return []
    if params["after_role"] != "any" and unit.prev_role != params["after_role"]:
        return []
    if len(doc) > 4 * params["max_words"] + 8:  # too long to be a few words, whatever its punctuation
        return []
    words = sum(1 for t in doc if t.is_alpha or t.like_num)
    if not words or words > params["max_words"]:
        return []
    if params["after"] != "any" and not is_question(unit.prev_text, open_only=params["after"] == "open_question"):
        return []
    content = [t.i for t in doc if not t.is_space]
    return [(content[0], content[-1] + 1)]


STRUCTURES: dict[str, Structure] = {
    "minimal_response": Structure(
        _minimal_response,
        {"max_words": _positive_int, "after": _one_of("open_question", "question", "any"), "after_role": _role},
        {"max_words": 3, "after": "open_question", "after_role": "therapist"},
        "a turn of at most max_words words that answers a question (after: open_question, question or any) "
        "asked by after_role in the turn just before",
    ),
}
