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
