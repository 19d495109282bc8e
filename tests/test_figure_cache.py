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
