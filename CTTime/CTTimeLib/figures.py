"""Figures: matplotlib (Agg, no display) set up once, PNGs written atomically and without a time stamp."""

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from . import outputs  # noqa: E402

METADATA = {"Software": None}  # no version or date in the file: the same figure gives the same bytes


def new(*args, **kwargs):
    """A new figure and axes (plt.subplots arguments)."""
    return plt.subplots(*args, **kwargs)


def png_bytes(figure, dpi=110):
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata=METADATA)
    plt.close(figure)
    return buffer.getvalue()


def write_png(data, path):
    """Write PNG bytes atomically."""
    with outputs.atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
    return data


def data_uri(data):
    """A PNG's bytes as a data: URI for an <img> tag."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
