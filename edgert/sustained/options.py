"""What a sustained run takes, declared once (``edgert bench --sustained 5m --duty 50%``).

Only the standard library and edgert.options: the CLI builds its parser from these before anything heavy loads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import OptionError
from ..options import check, option

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
#: the longest window compared at the start and the end of a run
WINDOW = 60.0


def duration(text: str) -> float:
    """'90', '90s', '5m', '1.5h' as seconds."""
    m = _DURATION.match(text)
    if not m:
        raise OptionError("sustained", f"{text!r} is not a duration; expected e.g. 60s, 5m or 1h")
    return float(m.group(1)) * _UNITS[m.group(2)]


def fraction(text: str) -> float:
    """'50%' or '0.5'."""
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise OptionError("duty", f"{text!r} is not a share of time; expected e.g. 50% or 0.5") from None


@dataclass(frozen=True)
class SustainedOptions:
    sustained: float | None = option(
        None, help="run under load this long instead, e.g. 5m, recording latency, CPU clock, temperature and "
        "throttling each second", parse=duration, metavar="DURATION",
    )  # fmt: skip
    duty: float = option(1.0, help="share of each second spent running the model, e.g. 50%%", parse=fraction,
                         shown="100%%")  # fmt: skip

    def __post_init__(self) -> None:
        s = self.sustained
        check(s is None or (math.isfinite(s) and 10 <= s <= 86400), "sustained",
              f"must be between 10 s and 24 h, got {s:g} s" if s is not None else "")  # fmt: skip
        check(math.isfinite(self.duty) and 0.05 <= self.duty <= 1.0, "duty",
              f"must be between 5% and 100%, got {self.duty:.0%}")  # fmt: skip

    @property
    def window(self) -> float:
        """The span compared at the start and at the end: a minute, or a quarter of a shorter run."""
        return min(WINDOW, (self.sustained or 0.0) / 4)
