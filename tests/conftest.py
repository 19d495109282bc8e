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


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    """The demo study after one `ipr analyze`, once per test module."""
    from click.testing import CliRunner

    from pipeline.cli import main

    root = copy_demo(tmp_path_factory.mktemp("analysed") / "study")
    result = CliRunner().invoke(main, ["analyze", "--study", str(root)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def study(analysed, tmp_path) -> Path:
    """A copy of the analysed demo study, for one test to change."""
    root = tmp_path / "study"
    shutil.copytree(analysed, root)
    return root
