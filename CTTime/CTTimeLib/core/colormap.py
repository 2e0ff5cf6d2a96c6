"""The CT-TIME colour map: one mapping from score to colour, used by every output.

Scores at or below the 0.5 threshold (uninflamed) run from dark grey (0) to light grey (0.5); scores above it
(inflamed) run from salmon (just above 0.5) to the paper's red #b2182b (1). The step at 0.5 makes the status
visible at a glance. Lesions without a score are drawn in ``FAILED_COLOR`` (yellow).
Paper palette: inflamed #b2182b, uninflamed #969696.
"""

import numpy as np

THRESHOLD = 0.5
INFLAMED_HEX, UNINFLAMED_HEX = "#b2182b", "#969696"
FAILED_HEX = "#e6c619"
# (score, colour) anchors of the two halves.
UNINFLAMED_RAMP = ((0.0, "#4d4d4d"), (THRESHOLD, "#d9d9d9"))
INFLAMED_RAMP = ((THRESHOLD, "#f4a582"), (1.0, INFLAMED_HEX))


def hex_to_rgb(text):
    text = text.lstrip("#")
    return tuple(int(text[i:i + 2], 16) / 255.0 for i in (0, 2, 4))


FAILED_COLOR = hex_to_rgb(FAILED_HEX)


def score_color(score, threshold=THRESHOLD):
    """RGB (0..1) for a score; ``FAILED_COLOR`` for a missing score."""
    if score is None or not np.isfinite(score):
        return FAILED_COLOR
    score = float(np.clip(score, 0.0, 1.0))
    (s0, c0), (s1, c1) = UNINFLAMED_RAMP if score <= threshold else INFLAMED_RAMP
    t = (score - s0) / (s1 - s0)
    return tuple(float(a + t * (b - a)) for a, b in zip(hex_to_rgb(c0), hex_to_rgb(c1)))


def score_hex(score):
    return "#" + "".join(f"{round(v * 255):02x}" for v in score_color(score))


def matplotlib_colormap(resolution=512):
    """The same map as a matplotlib colormap over 0..1 (for colour bars)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap([score_color(s) for s in np.linspace(0.0, 1.0, resolution)], name="ct_time")
