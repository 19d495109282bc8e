"""Who speaks: a turn's speaker label becomes a role.

Transcribers label speakers in many ways (``T``, ``Th.``, ``Counsellor``, ``Pt``, ``T12`` for the therapist's
twelfth turn, ``Dr. Ruiz``, ``Speaker 1``).
The common labels are built in; the study's ``[speakers]`` table in study.toml names the others, and wins.  In
an IPR recall interview the interviewed person keeps their role from the session (client or therapist), so that
a code about the client's recall applies whoever transcribed the label as "C" or "Participant".
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ROLES = ("therapist", "client", "interviewer", "participant", "unknown")

_BUILT_IN = {
    "therapist": ["t", "th", "ther", "thx", "therapist", "psychotherapist", "counsellor", "counselor", "couns",
                  "clinician", "analyst", "trainee", "therapeut", "therapeutin", "thérapeute", "terapeuta"],
    "client": ["c", "cl", "clt", "client", "p", "pt", "pat", "patient", "klient", "klientin", "patientin",
               "cliente", "paciente"],
    "interviewer": ["i", "int", "intv", "iv", "r", "res", "interviewer", "researcher", "investigator",
                    "ipr interviewer", "research assistant", "ra"],
    "participant": ["participant", "interviewee", "respondent", "ppt", "part"],
}
BUILT_IN: dict[str, str] = {label: role for role, labels in _BUILT_IN.items() for label in labels}

# A built-in label as a pattern (the longest first, any case, numbered by turn or not): for the layouts in which
# only a known label tells a speaker from the first word of a line ("T - Hello", "CLIENT" over its words).
KNOWN_LABEL = (r"(?i:" + "|".join(re.escape(label) for label in sorted(BUILT_IN, key=len, reverse=True))
               + r")(?:[ .#_\-]*\d{1,4})?")
_TRAILING = re.compile(r"[\s.:;,\-–—]+$")
_SPACES = re.compile(r"\s+")
_NUMBERED = re.compile(r"^(?P<label>.*?\D)[\s.#_\-]*\d{1,4}$")  # "T1", "C 12", "Th.3": turns numbered


def _base(key: str) -> str:
    """A normalised label without the number of its turn ("t12" -> "t"), when that is a built-in label."""
    m = _NUMBERED.match(key) if key not in BUILT_IN else None
    return normalise_label(m["label"]) if m and normalise_label(m["label"]) in BUILT_IN else key


def _built_in(key: str) -> str | None:
    """The built-in role of a normalised label; a label numbered by turn ("T12", "C 3") is its label's."""
    return BUILT_IN.get(_base(key))


# In an IPR interview, the other one's labels (T in the client's interview, C in the therapist's) are the session
# replayed on the video, transcribed where it plays; but "P" may be the interviewed participant, either of them.
_EITHER = {"p"}


def normalise_label(label: str) -> str:
    """The form labels are compared in: case-folded, single spaces, no trailing punctuation (``"Th. "``)."""
    return _TRAILING.sub("", _SPACES.sub(" ", label.strip())).casefold()


def is_known_label(label: str) -> bool:
    """Whether ``label`` is one of the built-in speaker labels (readers use it to tell labels from words)."""
    return _built_in(normalise_label(label)) is not None


def assign_role(label: str, kind: str, participant: str | None, speakers: Mapping[str, str]) -> str:
    """The role of a speaker ``label`` in a transcript of ``kind`` (``session`` or ``ipr``).

    ``participant`` is who an IPR interview interviews (``client`` or ``therapist``); ``speakers`` is the study's
    label-to-role table (case-insensitive), which wins over the built-in labels.
    """
    key = normalise_label(label)
    table = {normalise_label(k): str(v).strip().lower() for k, v in speakers.items()}
    interviewed = participant if participant in ("client", "therapist") else "participant"
    if key in table:
        role = table[key]
        if role not in ROLES:
            return "unknown"
        # The study said exactly who this is; only the generic "participant" still depends on the interview.
        return interviewed if kind == "ipr" and role == "participant" else role
    role = _built_in(key) or "unknown"
    if kind == "ipr" and role in ("client", "therapist", "participant"):
        if interviewed in ("client", "therapist") and role not in (interviewed, "participant") and (
                _base(key) not in _EITHER):
            return role  # the session, replayed: not the interviewed person's recall
        # The interviewed person, however labelled: they keep their role from the session.
        return interviewed
    return role


def unknown_label_warning(label: str, file: str) -> str:
    """One warning for a label that maps to no role, saying how to map it in study.toml."""
    if not label.strip():
        return (f"{file}: some turns have no speaker label, so their role is \"unknown\"; add the labels in the "
                "transcript, or list them in the [speakers] table of study.toml.")
    return (f"{file}: the speaker label \"{label}\" is not a known role, so its turns get the role \"unknown\"; "
            f"to map it, add it to the [speakers] table of study.toml, e.g. \"{label}\" = \"therapist\" "
            "(roles: therapist, client, interviewer, participant), or, where the label is someone else in each "
            f"file (a diarizer's SPEAKER_00, Speaker 1), to the file's row of data/raw/manifest.csv, column "
            f"speakers: \"{label}=therapist\".")
