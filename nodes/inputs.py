"""Checks of widget values for the nodes' ``validate_inputs``: ComfyUI runs them before anything executes.

ComfyUI 0.3.64 does not check V3 combo values sent over the API, and a NaN passes its min/max checks, so each
node checks its own; every message names the node, the input and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

NAME_BYTES = 200  # a file name's prefix part: 255 bytes on NTFS/ext4, less the counter and the longest suffix


def first_error(*results: bool | str) -> bool | str:
    """True when every check passed, else the first message."""
    return next((r for r in results if r is not True), True)


def check_combo(node: str, name: str, value, options: Sequence[str]) -> bool | str:
    if value is None or value in options:
        return True
    return f"{node}: input '{name}' is {value!r}; choose one of {', '.join(options)}"


def check_finite(node: str, name: str, value, low: float, high: float) -> bool | str:
    if value is None or (math.isfinite(value) and low <= value <= high):
        return True
    return f"{node}: input '{name}' is {value}; give a number from {low:g} to {high:g}"


def check_prefix(node: str, prefix) -> bool | str:
    """A filename_prefix with no NUL byte and no over-long name."""
    if prefix is None:
        return True
    if "\0" in prefix:
        return f"{node}: input 'filename_prefix' contains a NUL byte; remove it"
    longest = max(re.split(r"[\\/]", prefix), key=lambda part: len(part.encode("utf-8")))
    if len(longest.encode("utf-8")) > NAME_BYTES:
        return (f"{node}: input 'filename_prefix' has a name of {len(longest.encode('utf-8'))} bytes; keep each "
                f"folder or file name under {NAME_BYTES} bytes")
    return True
