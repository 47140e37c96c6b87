"""Where the local model store lives when nobody says: $KINETOSCOPE_HOME or ~/.cache/kinetoscope."""

from __future__ import annotations

import os
from pathlib import Path


def default_store() -> Path:
    return Path(os.environ.get("KINETOSCOPE_HOME") or Path.home() / ".cache" / "kinetoscope")
