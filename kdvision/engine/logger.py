"""Where a run reports: metrics.jsonl, TensorBoard scalars and images, the terminal."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


class RunLogger:
    """Writes one JSON object per line to metrics.jsonl and mirrors scalars to TensorBoard.

    On a terminal a progress bar (tqdm) shows loss, throughput and ETA; otherwise plain lines.
    """

    def __init__(self, metrics_path: Path | None, tensorboard_dir: Path | None, enabled: bool = True,
                 quiet: bool = False):
        self.enabled = enabled
        self.quiet = quiet or not enabled
        self.metrics_path = metrics_path if enabled else None
        self.writer = None
        if enabled and tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(tensorboard_dir))
            except ImportError:  # tensorboard is optional at run time
                self.writer = None
        self.interactive = sys.stderr.isatty() and not self.quiet

    def record(self, row: dict) -> None:
        if self.metrics_path is not None:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def line(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def progress(self, total: int, desc: str):
        """A tqdm bar on a terminal; a silent counter otherwise."""
        if self.interactive:
            from tqdm import tqdm

            return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)
        return _NoBar()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


class Throughput:
    def __init__(self):
        self.start = time.perf_counter()
        self.images = 0

    def add(self, n: int) -> None:
        self.images += n

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        return self.images / max(self.seconds, 1e-9)
