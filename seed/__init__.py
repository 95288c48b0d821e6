"""The one real bulletin (湘潭市, November 2019): per-unit table, headline and text.

Shipped as package data of ``hotline.seed`` and read through :mod:`importlib.resources`,
so a checkout (``seed/`` at the top of the repository) and an installed wheel find the
same files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

TABLE: Traversable = files(__name__) / "xiangtan-2019-11-units.csv"
HEADLINE: Traversable = files(__name__) / "xiangtan-2019-11-headline.json"
TEXT: Traversable = files(__name__) / "xiangtan-2019-11-bulletin.txt"


def headlines() -> Iterator[dict[str, Any]]:
    """Every published headline shipped here (``*-headline.json``), by file name."""
    for entry in sorted(files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith("-headline.json"):
            yield dict(json.loads(entry.read_text(encoding="utf-8")))
