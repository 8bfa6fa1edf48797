"""read_wav against scipy.io.wavfile as the oracle: every PCM width, float, WAVE_FORMAT_EXTENSIBLE, stereo, a
trailing partial frame; refusals are one line naming the format; NaN and inf are refused."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from edgert.errors import InputError
from edgert.tasks.audio import as_samples, read_wav

wavfile = pytest.importorskip("scipy.io.wavfile")
RATE = 16000
RNG = np.random.default_rng(0)
X = np.clip(RNG.normal(0, 0.3, (400, 2)), -1, 0.999).astype(np.float64)


def _riff(fmt: bytes, data: bytes, *, extra: bytes = b"") -> bytes:
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + b"data" + struct.pack("<I", len(data)) + data
    if len(data) % 2:
        chunks += b"\0"
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _fmt(tag: int, channels: int, bits: int, *, extensible: bool = False) -> bytes:
    align = channels * bits // 8
    base = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, RATE, RATE * align, align, bits)
    if not extensible:
        return base
    guid = struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return base + struct.pack("<HHI", 22, bits, 3) + guid


def _scaled(data: np.ndarray) -> np.ndarray:
    """scipy's integers as floats in [-1, 1], the way every audio library scales them."""
    if data.dtype == np.uint8:
        return (data.astype(np.float64) - 128) / 128
    if data.dtype.kind == "i":
        return data.astype(np.float64) / -float(np.iinfo(data.dtype).min)
    return data.astype(np.float64)


def _pcm(bits: int) -> tuple[bytes, np.ndarray]:
    if bits == 8:
        v = np.round(X * 127 + 128).astype(np.uint8)
        return v.tobytes(), v
    if bits == 24:
        v = np.round(X * 8388607).astype(np.int32)
        raw = b"".join(int(s).to_bytes(3, "little", signed=True) for s in v.reshape(-1))
        return raw, v
    dtype = {16: "<i2", 32: "<i4"}[bits]
    v = np.round(X * (2 ** (bits - 1) - 1)).astype(dtype)
    return v.tobytes(), v


@pytest.mark.parametrize("extensible", [False, True], ids=["plain", "extensible"])
@pytest.mark.parametrize("kind", ["pcm8", "pcm16", "pcm24", "pcm32", "float32", "float64"])
def test_every_format_matches_scipy(tmp_path, kind, extensible):
    if kind.startswith("pcm"):
        bits = int(kind[3:])
        data, _ = _pcm(bits)
        fmt = _fmt(1, 2, bits, extensible=extensible)
    else:
        bits = int(kind[5:])
        data = X.astype(f"<f{bits // 8}").tobytes()
        fmt = _fmt(3, 2, bits, extensible=extensible)
    path = tmp_path / "a.wav"
    path.write_bytes(_riff(fmt, data))
    rate, oracle = wavfile.read(path)
    want = _scaled(oracle)
    if kind == "pcm24":  # scipy returns 24-bit samples left-justified in int32
        want = oracle.astype(np.float64) / 2**31
    mono, got_rate = read_wav(path)
    assert got_rate == rate == RATE
    np.testing.assert_allclose(mono, want.mean(axis=1), rtol=1e-6, atol=1e-7)
    left, _ = read_wav(path, channel=1)
    np.testing.assert_allclose(left, want[:, 1], rtol=1e-6, atol=1e-7)


def test_odd_data_chunk_and_half_a_frame_drop_only_the_partial_frame(tmp_path):
    """Before: a traceback that stopped the whole batch."""
    data, v = _pcm(16)
    path = tmp_path / "odd.wav"
    path.write_bytes(_riff(_fmt(1, 2, 16), data + b"\x01\x02\x03"))  # 3 bytes: one and a half samples
    mono, _ = read_wav(path)
    np.testing.assert_allclose(mono, (v.astype(np.float32) / 32768).mean(axis=1), rtol=1e-6)
    path.write_bytes(_riff(_fmt(1, 1, 16), data + b"\x05"))  # mono, odd length: a half sample
    assert len(read_wav(path)[0]) == v.size


def test_refusals_name_the_format(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(_riff(struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8), b"\0" * 10))
    with pytest.raises(InputError, match="8-bit mu-law WAV is not supported"):
        read_wav(path)
    path.write_bytes(_riff(_fmt(1, 1, 12), b"\0" * 10))
    with pytest.raises(InputError, match="12-bit integer PCM WAV is not supported"):
        read_wav(path)
    path.write_bytes(b"RIFF\0\0\0\0WAVE")
    with pytest.raises(InputError, match="no fmt chunk"):
        read_wav(path)
    with pytest.raises(InputError, match="not a regular file"):
        read_wav("/dev/zero")


def test_nan_and_inf_are_refused(tmp_path):
    """Before: one NaN window then silence gave 3 windows >= 0.5."""
    x = np.zeros(100, np.float32)
    x[37] = np.nan
    path = tmp_path / "nan.wav"
    path.write_bytes(_riff(_fmt(3, 1, 32), x.tobytes()))
    with pytest.raises(InputError, match="sample 37 is nan"):
        read_wav(path)
    with pytest.raises(InputError, match="sample 37 is nan"):
        as_samples(x)
    x[37] = np.inf
    with pytest.raises(InputError, match="sample 37 is inf"):
        as_samples(x)
