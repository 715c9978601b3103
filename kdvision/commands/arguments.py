"""argparse ``type=`` functions for the commands' options: a bad value is refused while the
command line is parsed, as one ``kdvision: error:`` line with exit code 2 (``cli.Parser``)."""
from __future__ import annotations

import argparse


def int_at_least(low: int):
    """An integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
