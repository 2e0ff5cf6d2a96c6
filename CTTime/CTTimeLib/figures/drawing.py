"""Figures: matplotlib Figure objects (no pyplot, so no display and no global backend change, which matters
inside Slicer), PNGs written atomically and without a time stamp."""

import base64
import io

from matplotlib.figure import Figure

from ..core.files import atomic_path

METADATA = {"Software": None}  # no version or date in the file: the same figure gives the same bytes


def new(nrows=1, ncols=1, figsize=None, **kwargs):
    """A new figure and its axes (``Figure.subplots`` arguments)."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(nrows, ncols, **kwargs)


def add_warnings(figure, warnings, shown=8):
    """The warnings of the data behind a figure, in red under it (the first ``shown``, then how many more)."""
    lines = [f"WARNING: {text}" for text in list(warnings)[:shown]]
    if len(warnings) > shown:
        lines.append(f"... and {len(warnings) - shown} more warning(s): see the printed report")
    if lines:
        figure.text(0.01, -0.01, "\n".join(lines), va="top", ha="left", fontsize=6.5, color="#c00000", wrap=True)
    return figure


def png_bytes(figure, dpi=110):
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata=METADATA)
    return buffer.getvalue()


def write_png(data, path):
    """Write PNG bytes atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
    return data


def data_uri(data):
    """A PNG's bytes as a data: URI for an <img> tag."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
