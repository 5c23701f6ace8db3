"""Whether a step runs in the compiled core (the bestand-native package, built from native/).

The worker's per-event steps exist twice: in Python, the reference, and compiled, which the
tests hold to the reference byte by byte. A setting per step chooses (``auto``: compiled where
the package is installed).
"""

from __future__ import annotations

import importlib.util
from typing import Literal

Choice = Literal["auto", "native", "python"]


def compiled_in_use(choice: Choice, setting: str) -> str:
    """Which code a step with this choice runs: 'native' or 'python'."""
    if choice == "python":
        return "python"
    if importlib.util.find_spec("bestand_native") is not None:
        return "native"
    if choice == "native":
        raise RuntimeError(
            f"{setting}=native, but the bestand-native package is not installed "
            "(make install builds it; it needs Rust's cargo)"
        )
    return "python"
