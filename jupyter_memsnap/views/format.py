"""Human-readable rendering of the numeric DataFrames (sizes in KB/MB/GB, signed growth)."""

from __future__ import annotations

import pandas as pd

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_bytes(n: float | None, signed: bool = False) -> str:
    """``1234567`` -> ``'1.2 MB'`` (decimal units); ``signed`` prefixes ``+`` to growth."""
    if n is None or pd.isna(n):
        return ""
    sign = "-" if n < 0 else ("+" if signed and n > 0 else "")
    value = abs(float(n))
    unit = 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    if unit == 0:
        return f"{sign}{int(value)} B"
    return f"{sign}{value:.1f} {_UNITS[unit]}"


_BYTE_NAMES = (
    *("size", "reachable", "retained", "inclusive", "shared", "bytes", "heap", "rss"),
    *("native", "managed", "unmanaged", "unattributed", "kept"),
)


_COUNT_NAMES = ("count", "objects", "new", "freed", "survived")
"""Integer columns that count objects: shown with thousands separators."""


def size_columns(df: pd.DataFrame) -> list[str]:
    """Columns holding bytes, by the naming convention of the views (``size``,
    ``size_a``, ``size_diff``, ``new_size``, ``retained_b`` …)."""
    return [
        c
        for c in df.columns
        if isinstance(c, str)
        and pd.api.types.is_numeric_dtype(df[c])
        and (c.split("_")[0] in _BYTE_NAMES or c.endswith(("_size", "_bytes", "_sizeof")))
    ]


def for_display(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with byte columns as text and shares as percentages, for people to read."""
    out = df.copy()
    sizes = set(size_columns(out))
    for col in sizes:
        out[col] = [human_bytes(v, signed=col.endswith("_diff")) for v in out[col]]
    for col in out.columns:
        if col.endswith("_diff") and col not in sizes and pd.api.types.is_numeric_dtype(df[col]):
            out[col] = [f"{int(v):+,}" if pd.notna(v) else "" for v in out[col]]
        elif col.removesuffix("_a").removesuffix("_b") in _COUNT_NAMES:
            out[col] = [f"{int(v):,}" if pd.notna(v) else "" for v in out[col]]
        elif col == "share" or col.endswith("_share"):
            out[col] = [f"{v:.1%}" if pd.notna(v) else "" for v in out[col]]
    return out
