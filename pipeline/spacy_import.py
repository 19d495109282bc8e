"""spaCy imported without its command line.

``import spacy`` also imports spaCy's command line (typer, weasel, httpx, requests, a model downloader): a third
of the import, only to offer ``spacy.info``.  The process that codes a changed transcript waits for that import,
so the pipeline imports spaCy with the command line left out (upstream work to make it lazy: explosion/spaCy
#12962, #13933; once a spaCy release does, this module has nothing left to do).  ``spacy.info`` still works:
it imports the command line when called, and so does ``import spacy.cli``.
"""

from __future__ import annotations

import sys
from types import ModuleType

_COMMAND_LINE = ("spacy.cli", "spacy.cli.info")  # what ``spacy/__init__.py`` imports for ``spacy.info``


def _info(*args, **kwargs):
    from spacy.cli.info import info

    return info(*args, **kwargs)


def import_spacy() -> None:
    """Import spaCy, its command line stood in for while it is imported (and then the real one again)."""
    if "spacy" in sys.modules:
        return
    stand_ins = {name: ModuleType(name) for name in _COMMAND_LINE if name not in sys.modules}
    for module in stand_ins.values():
        module.__path__ = []
        module.info = _info
    sys.modules.update(stand_ins)
    try:
        import spacy  # noqa: F401
    except (ImportError, AttributeError):  # a spaCy that needs more of its command line: import it all
        for name in [name for name in sys.modules if name == "spacy" or name.startswith("spacy.")]:
            del sys.modules[name]
        import spacy  # noqa: F401
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


import_spacy()
