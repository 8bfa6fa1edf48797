"""Speech segments from per-window speech probabilities, by the rules Silero VAD's ``get_speech_timestamps`` uses,
so that ``AudioStream.detect()`` on a Silero model gives the segments its authors' own tool gives.

- Speech starts at the first window whose probability is at least ``threshold``.
- It ends where the probability first fell below ``end_threshold`` (default ``threshold - 0.15``, at least 0.01),
  once it has stayed out of speech for ``min_silence_ms``; a probability between the two thresholds neither
  starts nor ends speech, and one back at ``threshold`` cancels the pending end.
- A segment must be longer than ``min_speech_ms``; one still open at the end of the audio ends there.
- Each segment is widened by ``speech_pad_ms`` on both sides; where two segments are closer than twice the pad,
  the gap between them is split in half instead.

Positions are counted in samples, as Silero counts them, and returned in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class SegmentRules:
    threshold: float = 0.5
    end_threshold: float | None = None  # default: max(threshold - 0.15, 0.01)
    min_speech_ms: float = 250
    min_silence_ms: float = 100
    speech_pad_ms: float = 30

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise InputError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.end_threshold is not None and not 0 <= self.end_threshold <= self.threshold:
            raise InputError(f"end_threshold must be between 0 and threshold, got {self.end_threshold}")
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms"):
            value = getattr(self, name)
            if not value >= 0:  # NaN too
                raise InputError(f"{name} must be >= 0, got {value}")

    @property
    def exit(self) -> float:
        return self.end_threshold if self.end_threshold is not None else max(self.threshold - 0.15, 0.01)


def speech_samples(
    probs: Sequence[float], window: int, rate: int, length: int, rules: SegmentRules
) -> list[tuple[int, int]]:
    """(start, end) sample positions of the speech segments in audio of ``length`` samples."""
    min_speech = rate * rules.min_speech_ms / 1000
    min_silence = rate * rules.min_silence_ms / 1000
    pad = rate * rules.speech_pad_ms / 1000
    found: list[list[int]] = []
    start: int | None = None
    quiet_since: int | None = None  # where the probability last dropped below the exit threshold
    for i, p in enumerate(probs):
        at = i * window
        if p >= rules.threshold:
            quiet_since = None
            if start is None:
                start = at
            continue
        if start is None or p >= rules.exit:
            continue
        if quiet_since is None:
            quiet_since = at
        if at - quiet_since >= min_silence:
            if quiet_since - start > min_speech:
                found.append([start, quiet_since])
            start = quiet_since = None
    if start is not None and length - start > min_speech:
        found.append([start, length])
    for i, seg in enumerate(found):
        if i == 0:
            seg[0] = int(max(0, seg[0] - pad))
        if i + 1 < len(found):
            gap = found[i + 1][0] - seg[1]
            if gap < 2 * pad:
                seg[1] += int(gap // 2)
                found[i + 1][0] = int(max(0, found[i + 1][0] - gap // 2))
            else:
                seg[1] = int(min(length, seg[1] + pad))
                found[i + 1][0] = int(max(0, found[i + 1][0] - pad))
        else:
            seg[1] = int(min(length, seg[1] + pad))
    return [(a, b) for a, b in found]
