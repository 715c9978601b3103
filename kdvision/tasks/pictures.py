"""The picture grid that tasks show in their logs: rows of panels with white lines between."""
from __future__ import annotations

import numpy as np


def picture_grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Rows of HxWx3 uint8 panels (one size within a row, one width for all rows) joined into
    one image, with white lines ``gap`` pixels wide between panels and between rows."""
    joined = []
    for panels in rows:
        line = np.full((panels[0].shape[0], gap, 3), 255, np.uint8)
        parts = [part for panel in panels for part in (line, panel)][1:]
        joined.append(np.concatenate(parts, axis=1))
        joined.append(np.full((gap, joined[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(joined[:-1], axis=0)
