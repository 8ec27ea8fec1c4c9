"""Reading audio files: header checks, bounded block decoding to mono, truncation checks, resampling.

Split out of `audio.py` (which re-exports every name that was defined there before the split; `AudioModality.load` calls
`read_audio`). Any file soundfile opens becomes a float32 mono waveform at the model's rate in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from .base import InputError, decode_budget, read_input


def _audio_extensions() -> tuple[str, ...]:
    """Suffixes for the formats this libsndfile build can actually decode."""
    formats = sf.available_formats()
    exts = [".wav", ".flac"]
    if "OGG" in formats:
        exts += [".ogg", ".oga"]
    if "AIFF" in formats:
        exts += [".aiff", ".aif"]
    if "MP3" in formats:
        exts.append(".mp3")
    return tuple(exts)


AUDIO_EXTENSIONS = _audio_extensions()
SUPPORTED_HINT = "supported audio formats: " + ", ".join(
    e.lstrip(".").upper() for e in AUDIO_EXTENSIONS if e not in (".oga", ".aif")
)

# Decoding limits, checked from the header before any sample is decoded (see AudioModality.load):
# file sample rates outside 1 kHz-384 kHz are refused (a header claiming 2.1 GHz would otherwise
# resample 8,000 samples to 3.7 µs of "audio" and be predicted as silence), and so is audio whose
# decoded samples (frames x channels x 4 bytes of float32) exceed MAX_DECODED_BYTES, whatever its
# length in seconds. The file is decoded in blocks and mixed to mono as it goes, so memory follows
# the mono length, not the channel count.
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
MAX_DECODED_BYTES = 192 * 1024 * 1024
_BLOCK_FRAMES = 65_536
_EXACT_LENGTH_FORMATS = ("WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF", "CAF")  # headers give the exact length


def read_audio(
    path: str | Path, sample_rate: int, max_seconds: float, max_decoded_bytes: int = MAX_DECODED_BYTES
) -> np.ndarray:
    """Decode, mix to mono, resample to `sample_rate`; refuse empty, over-long, truncated or NaN audio.

    Rate, length and decoded size are checked from the header before decoding; the samples are
    then read in blocks and mixed down as they come (plain 16-bit and float WAVs directly with numpy).
    """
    p, buf = read_input(path, SUPPORTED_HINT, _PLAIN_WAV_MAX_BYTES)  # buf: None for a larger file
    try:
        plain = None if buf is None else _read_plain_wav(p, buf, max_seconds, max_decoded_bytes)
    except InputError as exc:  # the file named as its Path writes it, as the other readers name it
        raise InputError(Path(p), exc.reason, exc.hint) from None
    if plain is None:
        p = Path(p)
        return _at_rate(*_read_soundfile(p, p, max_seconds, max_decoded_bytes), sample_rate)
    mono, rate, in_range = plain
    if rate == sample_rate and in_range:
        return mono  # what _at_rate would return: this call's own float32 array, every sample in [-1, 1]
    return _at_rate(mono, rate, sample_rate)


def read_audio_file(
    fh: BinaryIO, name: str, sample_rate: int, max_seconds: float, max_decoded_bytes: int = MAX_DECODED_BYTES
) -> np.ndarray:
    """`read_audio` of an open, seekable binary file (an object in storage opened by pyarrow.fs), with the
    same header, size and truncation checks before decoding; errors name ``name`` (its URI)."""
    return _at_rate(*_read_soundfile(fh, name, max_seconds, max_decoded_bytes), sample_rate)


def _at_rate(mono: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Resampled to `sample_rate` when the file's `rate` differs, clipped to [-1, 1], float32."""
    if rate != sample_rate:
        import soxr  # only when the file's rate is not the model's

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    mono = np.array(mono, dtype=np.float32)  # a fresh array of this call's own, clipped in place
    # np.clip's values (NaN stays NaN) without its Python-level argument handling (~10 us a call)
    np.maximum(mono, np.float32(-1.0), out=mono)
    return np.minimum(mono, np.float32(1.0), out=mono)


# The plain WAV files read without libsndfile: (format tag, bytes per sample) -> (numpy dtype,
# scale). These are the values libsndfile gives for float32 reads (16-bit PCM: x / 32768; float: as
# stored), so both readers return the same waveform (tests/modalities/test_audio.py compares them).
_PLAIN_WAV = {(1, 2): ("<i2", np.float32(1.0 / 32768.0)), (3, 4): ("<f4", None)}
_PLAIN_WAV_MAX_BYTES = 16 * 1024 * 1024  # larger files go through soundfile, block by block


def _read_plain_wav(p: str | Path, buf: bytes, max_seconds: float,
                    max_decoded_bytes: int) -> tuple[np.ndarray, int, bool] | None:
    """(float32 mono samples, sample rate, whether every sample is already in [-1, 1]) of the bytes ``buf`` of
    a RIFF/WAVE file of 16-bit PCM or 32-bit float samples whose data chunk is complete, read with numpy (a
    third of libsndfile's per-file cost, which dominates for the 1 s clips of a batch run), after the same
    header checks as `_read_soundfile`. None for anything else (WAVE_FORMAT_EXTENSIBLE, 24-bit, a streamed
    or truncated data chunk, no data): soundfile reads those, with its checks and messages."""
    if len(buf) < 12 or buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        return None
    fmt = None
    offset = 12
    while offset + 8 <= len(buf):
        tag, length = buf[offset : offset + 4], int.from_bytes(buf[offset + 4 : offset + 8], "little")
        body = offset + 8
        if tag == b"fmt ":
            if length < 16 or body + 16 > len(buf):
                return None
            fmt = (int.from_bytes(buf[body : body + 2], "little"), int.from_bytes(buf[body + 2 : body + 4], "little"),
                   int.from_bytes(buf[body + 4 : body + 8], "little"),
                   int.from_bytes(buf[body + 12 : body + 14], "little"),
                   int.from_bytes(buf[body + 14 : body + 16], "little"))
        elif tag == b"data":
            return _plain_wav_data(p, buf, fmt, body, length, max_seconds, max_decoded_bytes)
        offset = body + length + (length & 1)
    return None


def _plain_wav_data(p: str | Path, buf: bytes, fmt: tuple[int, int, int, int, int] | None, start: int, length: int,
                    max_seconds: float, max_decoded_bytes: int) -> tuple[np.ndarray, int, bool] | None:
    if fmt is None:
        return None
    tag, channels, rate, block_align, bits = fmt
    spec = _PLAIN_WAV.get((tag, bits // 8)) if bits % 8 == 0 else None
    if (spec is None or channels < 1 or block_align != channels * (bits // 8) or length in (0, 0xFFFFFFFF)
            or length % block_align or start + length > len(buf)):
        return None
    frames = length // block_align
    _check_header(p, frames, rate, channels, max_seconds, max_decoded_bytes)
    dtype, scale = spec
    samples = np.frombuffer(buf, dtype=dtype, count=frames * channels, offset=start)
    if scale is None:
        if not np.all(np.isfinite(samples)):
            raise InputError(p, "contains NaN or infinite samples", "re-export the audio as PCM WAV or FLAC")
        block = samples.astype(np.float32)  # as stored; may lie outside [-1, 1]
    else:
        # one pass: each int16 sample cast to float32 and scaled in float32, as astype then *= did
        block = np.multiply(samples, scale, dtype=np.float32)  # in [-1, 1) by construction
    if channels > 1:
        block = block.reshape(frames, channels).mean(axis=1, dtype=np.float32)
    return block, rate, scale is not None


def _read_soundfile(source: Path | BinaryIO, p: str | Path, max_seconds: float,
                    max_decoded_bytes: int) -> tuple[np.ndarray, int]:
    """Any format libsndfile reads, from a path or an open file (`p` names it in errors): (float32 mono
    samples, the file's sample rate)."""
    try:
        with sf.SoundFile(source) as f:
            frames, rate, channels = f.frames, f.samplerate, f.channels
            _check_header(p, frames, rate, channels, max_seconds, max_decoded_bytes)
            if f.format in ("WAV", "WAVEX"):
                _check_riff_length(source, p, f.channels * _sample_bytes(f.subtype))
            with decode_budget(frames * 4):  # large files take turns across decoding threads
                mono = np.empty(frames, dtype=np.float32)
                done = 0
                while done < frames:
                    block = f.read(min(_BLOCK_FRAMES, frames - done), dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        break
                    if not np.all(np.isfinite(block)):
                        raise InputError(
                            p, "contains NaN or infinite samples", "re-export the audio as PCM WAV or FLAC"
                        )
                    n = block.shape[0]
                    mono[done : done + n] = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0]
                    done += n
                if done < frames and (f.format in _EXACT_LENGTH_FORMATS or done == 0):
                    raise InputError(
                        p,
                        f"truncated: the header promises {frames:,} frames ({frames / rate:.3g} s), "
                        f"the file holds {done:,}",
                        "re-export or re-copy the recording",
                    )
                mono = mono[:done]
    except InputError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise InputError(p, f"not a readable audio file: {exc}", SUPPORTED_HINT) from None
    except MemoryError:
        raise InputError(p, "audio is too large to decode in memory", "use a shorter file") from None
    return mono, rate


def _check_header(p: str | Path, frames: int, rate: int, channels: int, max_seconds: float, max_decoded_bytes: int) -> None:
    """Refuse, from the header alone, an implausible rate, no samples, too many seconds or too many decoded bytes."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InputError(
            p,
            f"implausible sample rate {rate:,} Hz (QMF Studio reads {MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz)",
            "re-export the recording at a standard rate such as 16 or 48 kHz",
        )
    if frames <= 0:
        raise InputError(p, "empty: header only, no samples", "record at least a fraction of a second")
    max_seconds = float(max_seconds)
    seconds = frames / rate
    if seconds > max_seconds:
        raise InputError(
            p,
            f"too long: {seconds:.1f} s, the limit is {max_seconds:g} s",
            "trim the recording to the part with the sound",
        )
    decoded = frames * channels * 4
    if decoded > max_decoded_bytes:
        raise InputError(
            p,
            f"{channels} channels x {frames:,} frames at {rate:,} Hz: {decoded / 2**20:,.0f} MiB once decoded, "
            f"above the limit of {max_decoded_bytes / 2**20:,.0f} MiB",
            "mix down to mono or stereo, or use a lower sample rate",
        )


def _sample_bytes(subtype: str) -> int:
    """Bytes per sample of a WAV subtype (PCM_16 -> 2, FLOAT -> 4, ...); 0 when unknown."""
    sizes = {"PCM_U8": 1, "PCM_S8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
             "FLOAT": 4, "DOUBLE": 8}
    return sizes.get(subtype, 0)


def _check_riff_length(source: Path | BinaryIO, p: str | Path, frame_bytes: int) -> None:
    """Refuse a WAV whose data chunk is shorter than its header says (libsndfile quietly clamps it).

    Streaming writers that do not know the length write 0 or 0xFFFFFFFF; those are accepted.
    ``source`` is the file's path, or the open file soundfile is reading (its position is restored).
    """
    if frame_bytes <= 0:
        return
    if isinstance(source, Path):
        with open(source, "rb") as fh:
            _check_riff_chunks(fh, p, frame_bytes, source.stat().st_size)
        return
    at = source.tell()
    try:
        size = source.seek(0, 2)
        source.seek(0)
        _check_riff_chunks(source, p, frame_bytes, size)
    finally:
        source.seek(at)


def _check_riff_chunks(fh: BinaryIO, p: str | Path, frame_bytes: int, size: int) -> None:
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    offset = 12
    while offset + 8 <= size:
        fh.seek(offset)
        chunk = fh.read(8)
        if len(chunk) < 8:
            return
        length = int.from_bytes(chunk[4:8], "little")
        if chunk[:4] == b"data":
            available = size - offset - 8
            if length in (0, 0xFFFFFFFF) or available >= length:
                return
            promised, held = length // frame_bytes, available // frame_bytes
            if promised - held >= 1:
                raise InputError(
                    p,
                    f"truncated: the header promises {promised:,} frames, the file holds {held:,}",
                    "re-export or re-copy the recording",
                )
            return
        offset += 8 + length + (length & 1)
