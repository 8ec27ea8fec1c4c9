"""Audio loading (formats, rates, channels, refusals), log-mel features and audio corruptions."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from app.modalities import AudioModality, InputError, get_modality
from app.modalities import audio as audio_mod


def _sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[np.argmax(spectrum)])


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean((noisy - clean.astype(float)) ** 2))


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
@pytest.mark.parametrize("sr", [8000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_load_resamples_and_mixes_down(tmp_path: Path, fmt: str, sr: int, channels: int) -> None:
    tone = _sine(440, sr, 1.0)
    data = tone if channels == 1 else np.stack([tone, np.zeros_like(tone)], axis=1)
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, data, sr, format=fmt)
    raw = AudioModality().load(path)
    assert raw.dtype == np.float32 and raw.ndim == 1
    assert abs(raw.size - 8000) <= 2
    assert np.abs(raw).max() <= 1.0
    assert _peak_hz(raw, 8000) == pytest.approx(440, abs=3)
    expected_peak = 0.5 if channels == 1 else 0.25  # mean of the channels
    assert np.abs(raw[100:-100]).max() == pytest.approx(expected_peak, rel=0.05)


def test_other_sample_rate_param(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, _sine(1000, 8000, 0.5), 8000)
    m = AudioModality({"sample_rate": 16000, "f_max": 8000.0})
    raw = m.load(path)
    assert abs(raw.size - 8000) <= 2 and _peak_hz(raw, 16000) == pytest.approx(1000, abs=3)


def test_empty_and_header_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        AudioModality().load(empty)
    header = tmp_path / "header.wav"
    sf.write(header, np.zeros(0, dtype=np.float32), 8000)
    assert header.stat().st_size > 0
    with pytest.raises(InputError, match="header only, no samples") as info:
        AudioModality().load(header)
    assert str(header) in str(info.value)


def test_not_audio_renamed(tmp_path: Path) -> None:
    path = tmp_path / "song.wav"
    path.write_text("this is not audio at all, just some text " * 10)
    with pytest.raises(InputError, match="not a readable audio file") as info:
        AudioModality().load(path)
    text = str(info.value)
    assert text.startswith(str(path)) and "WAV" in text and "\n" not in text


def test_too_long(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, _sine(440, 8000, 2.0), 8000)
    with pytest.raises(InputError, match=r"too long: 2\.0 s, the limit is 1\.5 s"):
        AudioModality({"max_seconds": 1.5}).load(path)


def test_nan_refused(tmp_path: Path) -> None:
    x = _sine(440, 8000, 0.2)
    x[10] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN"):
        AudioModality().load(path)
    with pytest.raises(InputError) as refused:  # a name given as a string is written as its Path writes it
        AudioModality().load(f"{tmp_path}//./nan.wav")
    assert refused.value.path == str(path)


# --- features -----------------------------------------------------------------------------


def test_log_mel_shape_and_level_kept() -> None:
    m = AudioModality()
    quiet = m.to_tensor(_sine(440, 8000, 1.0, amp=0.01))
    loud = m.to_tensor(_sine(440, 8000, 1.0, amp=0.5))
    silence = m.to_tensor(m.blank())
    noise = m.to_tensor(np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32))
    for x in (quiet, loud, silence, noise):
        assert tuple(x.shape) == m.input_shape == (1, 40, 126)
        assert x.dtype == torch.float32 and torch.isfinite(x).all()
    assert loud.max() > quiet.max() + 6  # 34 dB = 7.8 nats louder: no per-utterance normalisation
    assert noise.mean() > silence.mean() + 5
    assert silence.max().item() == pytest.approx(np.log(1e-5), abs=1e-3)


def test_log_mel_fixed_normalisation() -> None:
    x = _sine(440, 8000, 1.0)
    plain = AudioModality().to_tensor(x)
    normed = AudioModality({"mean": -3.0, "std": 2.0}).to_tensor(x)
    assert torch.allclose(normed, (plain + 3.0) / 2.0, atol=1e-5)


def test_utterance_normalised_channel_drops_the_recording_gain_but_keeps_the_level_channel() -> None:
    """The optional second channel ignores a microphone's gain; the first still tells loud from quiet."""
    m = AudioModality({"utterance_norm_channel": True})
    quiet = m.to_tensor(_sine(440, 8000, 0.5, amp=0.02))
    loud = m.to_tensor(_sine(440, 8000, 0.5, amp=0.4))
    assert tuple(quiet.shape) == m.input_shape == (2, 40, 126)
    assert torch.allclose(AudioModality().to_tensor(_sine(440, 8000, 0.5, amp=0.02))[0], quiet[0])
    assert loud[0].max() > quiet[0].max() + 5  # 26 dB apart in the level channel
    frames = quiet[0].mean(dim=0) > quiet[0].mean(dim=0).median()  # while the tone sounds
    bands = quiet[0][:, frames].mean(dim=1).topk(3).indices  # the bands it sounds in (far above the floor)
    assert torch.allclose(loud[1][bands][:, frames], quiet[1][bands][:, frames], atol=0.05)
    assert not torch.allclose(loud[0][bands][:, frames], quiet[0][bands][:, frames], atol=0.05)


def test_log_mel_any_length_for_display() -> None:
    params = AudioModality.default_params()
    assert audio_mod.log_mel(np.zeros(0, np.float32), params).shape == (40, 1)
    assert audio_mod.log_mel(np.zeros(10, np.float32), params).shape == (40, 1)
    assert audio_mod.log_mel(torch.zeros(16000), params).shape == (40, 251)


def test_mel_filterbank() -> None:
    fb = audio_mod.mel_filterbank(8000, 256, 40, 20.0, 4000.0)
    assert fb.shape == (40, 129) and fb.dtype == np.float32
    assert (fb.max(axis=1) > 0).all() and fb.max() <= 1.0
    centres = fb.argmax(axis=1)
    assert (np.diff(centres) >= 0).all()
    # a 440 Hz tone lands in a low mel band
    m = AudioModality()
    band = audio_mod.log_mel(_sine(440, 8000, 1.0), m.params).mean(axis=1).argmax()
    assert 5 < band < 20


def test_window_finds_the_loud_part() -> None:
    x = np.zeros(24000, np.float32)  # 3 s: a 0.3 s burst after 2.2 s of silence
    x[17600:20000] = _sine(440, 8000, 0.3)
    w = audio_mod.waveform_window(x, AudioModality.default_params())
    assert w.size == 8000
    assert np.sum(w**2) == pytest.approx(np.sum(x**2), rel=1e-6)
    loud = np.flatnonzero(np.abs(w) > 0.01)
    assert abs((loud[0] + loud[-1]) / 2 - 4000) < 200  # centred, even this close to the end
    steady = _sine(440, 8000, 1.5)  # loud throughout: the window stays inside the signal
    assert np.abs(audio_mod.waveform_window(steady, AudioModality.default_params())[:50]).max() > 0.1


def test_window_pads_short_centred() -> None:
    x = np.ones(2000, np.float32) * 0.5
    w = AudioModality().waveform_window(x)
    assert w.size == 8000 and w[:3000].max() == 0 and w[3000:5000].min() == 0.5 and w[5000:].max() == 0


# --- corruptions --------------------------------------------------------------------------

KINDS = AudioModality.corruption_kinds
STOCHASTIC = ("white_noise", "dropout", "babble")


@pytest.fixture
def speech() -> np.ndarray:
    """A crude voice: a few harmonics under a syllable-like envelope, with leading silence."""
    t = np.arange(8000) / 8000
    x = sum(a * np.sin(2 * np.pi * f * t) for f, a in ((200, 0.3), (700, 0.2), (1500, 0.1), (3000, 0.05)))
    envelope = np.clip(np.sin(np.pi * (t - 0.2) / 0.6), 0, None) * (t > 0.2)
    return (x * envelope).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_corruption_contract(kind: str, speech: np.ndarray) -> None:
    m = get_modality("audio")
    before = speech.copy()
    np_state, py_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
    assert np.array_equal(m.corrupt(speech, kind, 0, np.random.default_rng(1)), speech)
    a = m.corrupt(speech, kind, 6, np.random.default_rng(1))
    b = m.corrupt(speech, kind, 6, np.random.default_rng(1))
    assert np.array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == speech.shape
    assert np.abs(a).max() <= 1.0
    assert not np.array_equal(a, speech)
    if kind in STOCHASTIC:
        assert not np.array_equal(a, m.corrupt(speech, kind, 6, np.random.default_rng(2)))
    loud = m.corrupt(speech * 2.5, kind, 10, np.random.default_rng(3))
    assert np.abs(loud).max() <= 1.0
    assert np.array_equal(speech, before)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "missing"])
def test_corruption_grows_with_level(kind: str, speech: np.ndarray) -> None:
    m = get_modality("audio")

    def err(level: float) -> float:
        outs = [m.corrupt(speech, kind, level, np.random.default_rng(s)) for s in range(3)]
        return float(np.mean([np.mean((o.astype(float) - speech) ** 2) for o in outs]))

    values = [err(level) for level in (1, 4, 10)]
    assert values[0] < values[1] < values[2], values


def test_white_noise_snr_mapping() -> None:
    clean = _sine(440, 8000, 1.0, amp=0.05)
    for level in (2, 6):
        noisy = audio_mod.white_noise(clean, level, np.random.default_rng(0))
        assert _snr_db(clean, noisy) == pytest.approx(25 - 3.5 * level, abs=0.5)
    explicit = audio_mod.add_white_noise_snr(clean, 10.0, np.random.default_rng(0))
    assert _snr_db(clean, explicit) == pytest.approx(10.0, abs=0.5)


def test_white_noise_ignores_leading_silence() -> None:
    burst = _sine(440, 8000, 0.25, amp=0.05)
    x = np.concatenate([np.zeros(6000, np.float32), burst])
    noisy = audio_mod.white_noise(x, 4, np.random.default_rng(0))
    assert _snr_db(burst, noisy[6000:]) == pytest.approx(11.0, abs=0.7)


def test_white_noise_on_silence() -> None:
    noisy = audio_mod.white_noise(np.zeros(8000, np.float32), 5, np.random.default_rng(0))
    assert noisy.std() == pytest.approx(0.05, rel=0.05)
    assert audio_mod.add_white_noise_snr(np.zeros(100, np.float32), 0, np.random.default_rng(0)).max() == 0


def test_dropout_fraction() -> None:
    x = np.full(16000, 0.5, np.float32)
    out = audio_mod.dropout(x, 5, np.random.default_rng(0), sample_rate=8000)
    assert np.mean(out == 0) == pytest.approx(0.35, abs=0.02)
    zero_runs = np.diff(np.flatnonzero(np.diff((out == 0).astype(int)) == 1))
    assert zero_runs.min() >= 240  # ~30 ms chunks at 8 kHz


def test_clipping_bandlimit_babble_mappings(speech: np.ndarray) -> None:
    peak = np.abs(speech).max()
    clipped = audio_mod.clipping(speech, 5)
    assert np.abs(clipped).max() == pytest.approx((1 - 0.475) * peak, rel=1e-5)
    assert audio_mod.bandlimit_cutoff(0, 8000) == pytest.approx(4000)
    assert audio_mod.bandlimit_cutoff(10, 8000) == pytest.approx(300)
    assert audio_mod.bandlimit_cutoff(5, 8000) == pytest.approx(np.sqrt(4000 * 300))
    low = audio_mod.bandlimit(_sine(1000, 8000, 1.0) + _sine(200, 8000, 1.0), 10, sample_rate=8000)
    assert _peak_hz(low, 8000) == pytest.approx(200, abs=3)
    assert np.abs(np.fft.rfft(low))[900:1100].max() < 1e-3
    mixed = audio_mod.babble(speech, 5, np.random.default_rng(0))
    assert _snr_db(speech, mixed) == pytest.approx(5.0, abs=1.5)


def test_missing() -> None:
    m = get_modality("audio")
    out = m.corrupt(np.ones(3000, np.float32) * 0.1, "missing", 1, np.random.default_rng(0))
    assert out.shape == (3000,) and out.max() == 0 and out.dtype == np.float32
    empty = m.corrupt(np.zeros(0, np.float32), "missing", 1, np.random.default_rng(0))
    assert empty.shape == (8000,) and empty.max() == 0


def test_a_model_with_the_utterance_channel_takes_its_two_channel_input() -> None:
    from app.qmf.model import ModalityConfig, ModelConfig, QMFModel

    pre = {"duration": 0.5, "utterance_norm_channel": True}
    model = QMFModel(ModelConfig(name="m", labels=["a", "b"], modalities=[
        ModalityConfig("left", "audio", pre, {"channels": [4], "hidden": 8, "dropout": 0.0}),
        ModalityConfig("right", "audio", {"duration": 0.5}, {"channels": [4], "hidden": 8, "dropout": 0.0})]))
    m2, m1 = get_modality("audio", pre), get_modality("audio", {"duration": 0.5})
    wave = _sine(300, 8000, 0.4)
    out = model.eval()({"left": m2.to_tensor(wave).unsqueeze(0), "right": m1.to_tensor(wave).unsqueeze(0)})
    assert out.fused.shape == (1, 2) and torch.isfinite(out.fused).all()


def test_the_displayed_log_mel_is_the_models_computation() -> None:
    """`log_mel` (the app's pictures) equals the model's input before normalising (the model's features
    are computed by it; tests/qmf/test_onnx.py holds it equal to torch.stft's)."""
    m = AudioModality()
    params = m.params
    wave = _sine(440, 8000, 0.7) + 0.05 * np.random.default_rng(0).standard_normal(5600).astype(np.float32)
    shown = audio_mod.log_mel(m.waveform_window(wave), params)
    model = m.to_array(wave)[0] * params["std"] + params["mean"]
    assert shown.shape == model.shape
    assert np.allclose(shown, model, atol=1e-4)


# --- plain WAVs are read without libsndfile: the same samples ------------------------------


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
@pytest.mark.parametrize("channels", [1, 2])
def test_plain_wav_reads_the_samples_libsndfile_reads(tmp_path: Path, subtype: str, channels: int) -> None:
    from app.modalities import audio_read

    rng = np.random.default_rng(channels)
    x = rng.uniform(-1, 1, (4000, channels)).astype(np.float32)
    x[:3] = [[-1.0] * channels, [1.0] * channels, [0.0] * channels]  # the ends of the 16-bit range
    path = tmp_path / f"{subtype}-{channels}.wav"
    sf.write(path, x, 8000, subtype=subtype)
    direct = audio_read._read_plain_wav(path, path.read_bytes(), 60.0, audio_mod.MAX_DECODED_BYTES)
    assert direct is not None  # this file takes the direct path
    by_libsndfile = audio_read._read_soundfile(path, path, 60.0, audio_mod.MAX_DECODED_BYTES)
    assert direct[1] == by_libsndfile[1] == 8000
    np.testing.assert_array_equal(direct[0], by_libsndfile[0])
    # 16-bit samples are in range as read, so `load` hands them over without the clip's copy
    assert direct[2] == (subtype == "PCM_16")
    loaded = AudioModality().load(path)
    assert loaded.dtype == np.float32 and loaded.flags.writeable and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, np.clip(by_libsndfile[0], -1, 1))


@pytest.mark.parametrize("subtype", ["PCM_24", "PCM_U8", "DOUBLE"])
def test_other_wavs_are_read_by_libsndfile(tmp_path: Path, subtype: str) -> None:
    from app.modalities import audio_read

    path = tmp_path / f"{subtype}.wav"
    sf.write(path, _sine(440, 8000, 0.5), 8000, subtype=subtype)
    assert audio_read._read_plain_wav(path, path.read_bytes(), 60.0, audio_mod.MAX_DECODED_BYTES) is None
    np.testing.assert_allclose(AudioModality().load(path), _sine(440, 8000, 0.5), atol=1e-2)


def test_plain_wav_limits_are_checked_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, _sine(440, 8000, 2.0), 8000)  # PCM_16: the direct path
    with pytest.raises(InputError, match=r"too long: 2\.0 s, the limit is 1\.5 s"):
        AudioModality({"max_seconds": 1.5}).load(path)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[:-1000])  # the data chunk promises more than the file holds
    with pytest.raises(InputError, match="truncated"):
        AudioModality().load(cut)


# --- the model input: one recording alone, in a batch, and against torch -------------------------


@pytest.mark.parametrize("two_channels", [False, True])
def test_model_input_alone_equals_its_row_in_a_batch_and_torchs_features(two_channels: bool) -> None:
    """`to_array` (one pair: the app, `qmf predict`, a batch run's decoding workers) and `to_arrays` (a
    batch) give the same numbers bit for bit, for recordings shorter than, as long as and longer than the
    model's window; both equal the features computed with torch.stft, the mel product and the mean of the
    louder half of the frames (the second channel) within 1e-4."""
    m = AudioModality({"hop_length": 128, "mean": -8.8, "std": 3.93, "utterance_norm_channel": two_channels})
    rng = np.random.default_rng(11)
    raws = [(rng.normal(0, 0.2, n) * np.hanning(n)).astype(np.float32) for n in (8000, 3000, 13000, 8000, 511)]
    raws += [np.zeros(8000, np.float32), _sine(300, 8000, 1.0), rng.normal(0, 0.3, 8000)]  # the last float64
    batch = m.to_arrays(raws)
    assert batch.shape == (len(raws), *m.input_shape) and batch.dtype == np.float32
    params = m.params
    n_fft, hop = params["n_fft"], params["hop_length"]
    fb = torch.from_numpy(np.array(audio_mod._mel_filterbank_np(*audio_mod._feature_key(params))))
    for i, raw in enumerate(raws):
        alone = m.to_array(raw)
        np.testing.assert_array_equal(alone, batch[i])
        wave = torch.from_numpy(m.waveform_window(raw))
        spec = torch.stft(wave, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft, periodic=True),
                          center=True, pad_mode="constant", return_complex=True)
        logmel = torch.log(fb @ (spec.real.square() + spec.imag.square()) + params["log_floor"])
        want = [(logmel - params["mean"]) / params["std"]]
        if two_channels:
            loud = torch.topk(logmel.mean(dim=0), logmel.shape[1] // 2).indices
            want.append((logmel - logmel[:, loud].mean(dim=1, keepdim=True)) / params["std"])
        np.testing.assert_allclose(alone, torch.stack(want).numpy(), atol=1e-4, rtol=0)
