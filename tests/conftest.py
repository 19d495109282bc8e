import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo_study(tmp_path) -> Path:
    """A copy of the repository's demo study, to run the pipeline on without touching the repository."""
    root = tmp_path / "study"
    shutil.copytree(REPO / "data" / "raw", root / "data" / "raw")
    shutil.copytree(REPO / "codebooks", root / "codebooks")
    shutil.copy(REPO / "study.toml", root / "study.toml")
    return root
