"""Where the data folders (rules/, reference_models/, datasets/) are.

Installed from a wheel they sit inside the package (tinyharness/rules, ...); in a source checkout
(editable install) they sit beside harness/ at the top of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    inside = _PKG / name
    return inside if inside.is_dir() else _PKG.parent / name
