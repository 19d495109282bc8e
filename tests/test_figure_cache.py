"""A figure is drawn again only when what it shows changed."""

import pandas as pd

from pipeline.figures import code_frequency_figure


def test_figure_is_kept_when_its_data_did_not_change_and_redrawn_when_it_did(tmp_path):
    path = tmp_path / "bars.png"
    freq = pd.DataFrame({"label": ["a", "b"], "auto": [3, 1]})
    code_frequency_figure(freq, ["auto"], path)
    first = path.stat().st_mtime_ns
    code_frequency_figure(freq.copy(), ["auto"], path)
    assert path.stat().st_mtime_ns == first
    code_frequency_figure(freq.assign(auto=[3, 2]), ["auto"], path)
    assert path.stat().st_mtime_ns != first
    again = path.stat().st_mtime_ns
    code_frequency_figure(freq.assign(auto=[3, 2]), ["auto"], path, title="With a title")
    assert path.stat().st_mtime_ns != again


def test_a_change_in_the_middle_of_a_long_table_redraws_the_figure(tmp_path):
    path = tmp_path / "bars.png"
    freq = pd.DataFrame({"label": [f"code {i}" for i in range(200)], "auto": list(range(200))})
    code_frequency_figure(freq, ["auto"], path)
    first = path.stat().st_mtime_ns
    changed = freq.copy()
    changed.loc[100, "auto"] = 999  # a row that a shortened repr() of the table would not show
    code_frequency_figure(changed, ["auto"], path)
    assert path.stat().st_mtime_ns != first
