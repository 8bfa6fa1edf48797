"""Streaming voice activity from a WAV file, fed in 20 ms chunks as a microphone would give them.

    python examples/stream_vad.py VAD_BUNDLE speech.wav [--threshold 0.5]

The bundle is a streaming model imported with `edgert import --task audio-stream` (Silero VAD, for example:
`--sample-rate 16000 --window 512 --context 64 --audio-input input --sample-rate-input sr --state state:stateN
--output output --output-kind probabilities`). Each chunk goes through one live stream, which carries the model's
state; the script prints when speech starts and stops, and the real-time factor of the whole run.
"""

from __future__ import annotations

import argparse
import sys
import time

import edgert
from edgert.tasks.audio import read_wav


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("wav")
    ap.add_argument("--threshold", type=float, default=0.5)
    args = ap.parse_args(argv)
    model = edgert.load(args.bundle)
    samples, rate = read_wav(args.wav)
    if rate != model.sample_rate:
        print(f"{args.wav}: {rate} Hz, but the model takes {model.sample_rate} Hz", file=sys.stderr)
        return 2
    stream, chunk = model.stream(), rate // 50  # 20 ms
    speaking, window_s = False, model.seconds_per_window
    started = time.perf_counter()
    for i in range(0, len(samples), chunk):
        first = stream.windows  # windows run before this chunk
        for k, p in enumerate(stream.push(samples[i : i + chunk])):
            at = (first + k) * window_s  # where the window this probability is for starts
            if (p >= args.threshold) != speaking:
                speaking = not speaking
                print(f"{at:7.3f} s  {'speech' if speaking else 'silence'}  (p={p:.2f})")
    elapsed = time.perf_counter() - started
    seconds = len(samples) / rate
    print(f"{seconds:.2f} s of audio in {elapsed * 1000:.1f} ms: real-time factor {elapsed / seconds:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
