import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def copy_demo(root: Path) -> Path:
    """A copy of the repository's demo study at ``root``, to run the pipeline on without touching the repository."""
    shutil.copytree(REPO / "data" / "raw", root / "data" / "raw")
    shutil.copytree(REPO / "codebooks", root / "codebooks")
    shutil.copy(REPO / "study.toml", root / "study.toml")
    return root


@pytest.fixture
def demo_study(tmp_path) -> Path:
    return copy_demo(tmp_path / "study")
