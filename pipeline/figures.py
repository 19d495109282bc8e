"""Figures of the report, drawn with matplotlib (Agg, imported only when a figure is drawn) and saved as PNG.

Every function takes tables and a path, draws one figure, saves it and returns the path; the report embeds the
PNG files and they stay in ``reports/figures/`` for slides and papers.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .files import atomic_path, code_version, sha256_text
from .timecode import format_time

DPI = 160
PNG_LEVEL = 3  # zlib's: two thirds of the time of the default level (6), for files a tenth larger
WIDTH_IN = 6.5
COLORS = {"withdrawal": "#4C72B0", "confrontation": "#C44E52", "resolution": "#55A868", "client": "#8172B2",
          "therapist": "#CCB974"}
SOURCE_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B2", "#937860", "#DA8BC3", "#8C8C8C"]


_KEY_FIELD = "ipr-figure-key"
_drawing_key = ""  # the key of the figure being drawn, stored in its PNG by _save


def _key(args: tuple, kwargs: dict) -> str:
    """A key of everything a figure shows: frames by a hash of their values (never their ``repr``, which is
    slow to format and shows only the first and last rows of a long frame), other values by ``repr``."""
    parts = []
    for name, value in (*((None, a) for a in args), *sorted(kwargs.items(), key=lambda kv: kv[0])):
        if name is not None:
            parts.append(repr(name))
        if isinstance(value, pd.DataFrame | pd.Series):
            columns = list(value.columns) if isinstance(value, pd.DataFrame) else [value.name]
            hashed = pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes() if len(value) else b""
            parts.append(f"{columns!r}:{hashlib.sha256(hashed).hexdigest()}")
        elif not isinstance(value, Path):
            parts.append(repr(value))
    return sha256_text(code_version(), *parts)


def _stored_key(path: Path) -> str:
    """The key in a PNG's ``tEXt`` chunk, read by walking the chunks (Pillow's ``im.text`` decodes the whole
    image to find text after the pixels, which made checking the cache cost as much as a small drawing)."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return ""
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return ""
                size, kind = int.from_bytes(head[:4], "big"), head[4:]
                if kind == b"tEXt":
                    name, _, value = f.read(size).partition(b"\0")
                    if name == _KEY_FIELD.encode("latin-1"):
                        return value.decode("latin-1")
                    f.seek(4, 1)  # the CRC
                elif kind == b"IEND":
                    return ""
                else:
                    f.seek(size + 4, 1)
    except OSError:
        return ""


def drawn_once(draw):
    """Draw a figure only when what it shows changed: the PNG carries a key of its data, and a figure whose key
    matches is kept.  Drawing the timelines of a large study costs seconds; a re-run should not pay them again.
    ``figure.path_of(*args, **kwargs)`` is where the figure goes, known without checking or drawing it."""

    signature = inspect.signature(draw)

    def path_of(*args, **kwargs) -> Path:
        return Path(signature.bind(*args, **kwargs).arguments["path"])

    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> Path:
        global _drawing_key
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        path = Path(bound.arguments["path"])
        key = _key((), dict(bound.arguments))
        if path.exists() and _stored_key(path) == key:
            return path
        _drawing_key = key
        try:
            return draw(*args, **kwargs)
        finally:
            _drawing_key = ""

    wrapper.path_of = path_of
    return wrapper


class Figures:
    """The figures of one report, in ``folder``: each kept or drawn as ``drawn_once`` decides.  Forked worker
    processes (one per core) do that while the report's text is written, for finding whether a figure changed
    means hashing its data, and drawing the timelines of a large study takes seconds; :meth:`wait` waits for
    them."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.paths: list[Path] = []  # every figure of the report
        self._todo: list[tuple] = []  # (figure, args, kwargs) not yet given to a worker
        self._pool = None
        self._futures: list = []

    def draw(self, figure, *args, **kwargs) -> Path:
        """``figure(*args, **kwargs)`` for a ``drawn_once`` figure; its PNG is there once :meth:`wait` returns."""
        self.paths.append(figure.path_of(*args, **kwargs))
        self._todo.append((figure, args, kwargs))
        if len(self._todo) > 1 or self._pool is not None:
            self._start()
        return self.paths[-1]

    def _start(self) -> None:
        """Give the queued figures to the workers, started with the second figure (a report with one figure
        checks or draws it here: starting processes would cost more)."""
        from .parallel import can_fork, cores, pool

        if not can_fork():
            return
        if self._pool is None:
            if not all(path.exists() for path in self.paths):
                # a figure to draw for sure: what drawing takes is imported once, here, before the workers fork
                from matplotlib import collections, figure, ticker  # noqa: F401
                from matplotlib.backends import backend_agg  # noqa: F401
            self._pool = pool(cores())
        self._futures += [self._pool.submit(figure, *args, **kwargs) for figure, args, kwargs in self._todo]
        self._todo = []

    def wait(self) -> None:
        """Check or draw what is left here, and wait for the workers (an error of theirs is raised here)."""
        for figure, args, kwargs in self._todo:
            figure(*args, **kwargs)
        self._todo = []
        for future in self._futures:
            future.result()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return False


def _figure(width_in: float, height_in: float):
    """A figure drawn by Agg, without pyplot (whose bookkeeping of open figures a saved PNG does not need)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    """Save as PNG, the margins fitted to the labels."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", pil_kwargs={"compress_level": PNG_LEVEL},
                    metadata={_KEY_FIELD: _drawing_key} if _drawing_key else None)
    return path


def time_label(seconds: float, _pos=None) -> str:
    """Axis ticks as h:mm:ss, as every time in the report."""
    return format_time(max(0.0, seconds))


@drawn_once
def code_frequency_figure(freq: pd.DataFrame, sources: list[str], path: Path, title: str = "",
                          families: list[str] | None = None) -> Path:
    """Horizontal bars: units per code (rows ``label``), one bar per source (columns named as in ``sources``);
    with one source, the bars take the colour of the code's family (``families``, one per row)."""
    freq = freq.iloc[::-1]  # matplotlib draws the first row at the bottom
    fam = list(reversed(families)) if families and len(sources) == 1 else None
    n, k = len(freq), max(1, len(sources))
    height = min(22.0, 1.2 + 0.34 * n * (1 + 0.3 * (k - 1)))
    fig = _figure(WIDTH_IN - 1.5, height)  # the labels take the rest of the width
    ax = fig.subplots()
    bar = 0.8 / k
    for i, src in enumerate(sources):
        ys = [y + (k - 1 - i) * bar - 0.4 + bar / 2 for y in range(n)]
        if fam:
            order = list(dict.fromkeys(reversed(fam)))
            colors = [SOURCE_COLORS[order.index(f) % len(SOURCE_COLORS)] for f in fam]
            ax.barh(ys, freq[src].to_numpy(dtype=float), height=bar, color=colors)
            for f in order:
                ax.barh([0], [0], color=SOURCE_COLORS[order.index(f) % len(SOURCE_COLORS)], label=f)
        else:
            ax.barh(ys, freq[src].to_numpy(dtype=float), height=bar, label=src,
                    color=SOURCE_COLORS[i % len(SOURCE_COLORS)])
    ax.set_yticks(range(n))
    ax.set_yticklabels(freq["label"], fontsize=7.5, linespacing=1.1)
    ax.set_xlabel("units coded", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylim(-0.6, n - 0.4)
    if k > 1 or fam:
        ax.legend(fontsize=7, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3 if fam else
                  min(k, 6))
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


LANES = ["therapist IPR stops", "client IPR stops", "resolution", "confrontation", "withdrawal"]
_MARKS = {"withdrawal": {"marker": "v", "s": 36}, "confrontation": {"marker": "^", "s": 36},
          "resolution": {"marker": "o", "s": 30}, "client": {"marker": "|", "s": 120, "linewidths": 1.6},
          "therapist": {"marker": "|", "s": 120, "linewidths": 1.6}}


@dataclass
class _Frame:
    """A timeline's frame for one length of session: lanes, axis, ticks, shaded segments, already drawn (its
    pixels kept in ``background``), and the artists a session's data goes into.  Drawing a session then means
    drawing only its markers and title over a copy of the frame: axes, ticks and labels are most of the work."""

    fig: object
    ax: object
    background: object
    marks: dict
    links: object
    title: object
    after: object  # covers the frame's clock after the session's end
    end: object  # a dashed line at the session's end


@functools.lru_cache(maxsize=16)  # one per length of session (5-minute steps)
def _timeline_frame(end: float, segment_s: float) -> _Frame:
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    fig = _figure(WIDTH_IN, 2.4)
    fig.set_dpi(DPI)
    ax = fig.subplots()
    ax.set_autoscale_on(False)  # the limits are the frame's: no work fitting them to the data
    fig.subplots_adjust(left=0.2, right=0.98, top=0.88, bottom=0.2)
    ax.set_yticks(range(len(LANES)))
    ax.set_yticklabels(LANES, fontsize=7)
    ax.set_ylim(-0.6, len(LANES) - 0.4)
    ax.xaxis.set_major_formatter(FuncFormatter(time_label))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("session time (shaded bands: 5-minute segments; dashed line: the end of the session)", fontsize=7)
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.tick_params(axis="y", length=0)
    for k in range(0, int(end // segment_s), 2):
        ax.axvspan(k * segment_s, min((k + 1) * segment_s, end), color="#f2f2f2", zorder=0, linewidth=0)
    ax.set_xlim(-0.01 * end, end * 1.02)
    ax.xaxis.set_major_locator(MultipleLocator(segment_s if end <= 6 * segment_s else 2 * segment_s))
    links = ax.add_collection(LineCollection([], colors="#8c8c8c", linewidths=0.8, zorder=2, animated=True))
    after = ax.add_patch(Rectangle((end, 0), 0, 1, transform=ax.get_xaxis_transform(), facecolor=fig.get_facecolor(),
                                   linewidth=0, zorder=1, animated=True))
    end_line = ax.axvline(end, color="#8c8c8c", linewidth=0.8, linestyle=(0, (3, 2)), zorder=1, animated=True)
    marks = {name: ax.scatter([], [], color=COLORS[name], zorder=3, animated=True, **style)
             for name, style in _MARKS.items()}
    title = ax.set_title("", fontsize=9, loc="left")
    title.set_animated(True)
    fig.canvas.draw()
    return _Frame(fig, ax, fig.canvas.copy_from_bbox(fig.bbox), marks, links, title, after, end_line)


@drawn_once
def timeline_figure(title: str, duration_s: float, ruptures: pd.DataFrame, resolutions: pd.DataFrame,
                    sequences: pd.DataFrame, stops: pd.DataFrame, path: Path, segment_s: float = 300.0) -> Path:
    """One session on its clock: rupture markers by type, resolution strategies, a line from each repaired
    rupture to its repair, the IPR stops of client and therapist, and the 5-minute segments shaded.  The clock
    runs to the end of the session's last 5-minute segment, so that sessions of about the same length share a
    frame; a dashed line marks the session's end, and the clock after it is left blank."""
    import numpy as np

    duration = duration_s if duration_s == duration_s else 0.0
    frame = _timeline_frame(segment_s * max(1, -(-duration // segment_s)), segment_s)
    y = {name: i for i, name in enumerate(LANES)}

    def at(times, lane: str):
        times = np.asarray(times, dtype=float)
        return np.column_stack([times, np.full(len(times), y[lane], dtype=float)])

    types = dict(zip(ruptures["turn_id"], ruptures["type"], strict=True))
    links = []
    for s in sequences[sequences["status"] == "repaired"].itertuples(index=False):
        lane = "withdrawal" if "withdrawal" in types.get(s.rupture_turn_id, "withdrawal") else "confrontation"
        links.append([(s.rupture_s, y[lane]), (s.repair_s, y["resolution"])])
    frame.links.set_segments(links)
    for kind in ("withdrawal", "confrontation"):
        frame.marks[kind].set_offsets(at(ruptures.loc[ruptures["type"].str.contains(kind), "time_s"], kind))
    frame.marks["resolution"].set_offsets(at(resolutions["time_s"], "resolution"))
    for who in ("client", "therapist"):
        frame.marks[who].set_offsets(at(stops.loc[stops["participant"] == who, "session_s"], f"{who} IPR stops"))
    frame.title.set_text(title)
    frame.after.set_x(duration)
    frame.after.set_width(frame.ax.get_xlim()[1] - duration)
    frame.end.set_xdata([duration, duration])
    canvas = frame.fig.canvas
    canvas.restore_region(frame.background)
    ended = (frame.after, frame.end, frame.ax.spines["bottom"]) if duration else ()  # (the spine: under the cover)
    for artist in (*ended, frame.links, *frame.marks.values(), frame.title):
        frame.ax.draw_artist(artist)
    return _save_drawn(canvas, path)


def _save_drawn(canvas, path: Path) -> Path:
    """A PNG of what the canvas holds (``savefig`` would draw the whole figure again)."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if _drawing_key:
        info.add_text(_KEY_FIELD, _drawing_key)
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    path = Path(path)
    with atomic_path(path) as tmp:
        # RGB: the figure is opaque, and a fourth channel is a third more to compress
        image.convert("RGB").save(tmp, format="png", dpi=(DPI, DPI), pnginfo=info, compress_level=PNG_LEVEL)
    return path
