"""Foreign-input generators and the training degradation zoo: seeded, valid raw inputs, unlike the originals."""

import numpy as np
import pytest

from app.modalities import get_modality, zoo
from app.modalities import outliers as foreign

IMAGE = {"size": [28, 28], "channels": 1}
AUDIO = {"sample_rate": 8000}


def _speech_like(n=6000):
    t = np.arange(n) / 8000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.hanning(n)).astype(np.float32)


@pytest.mark.parametrize("family", foreign.families_for("image"))
def test_image_families_are_seeded_valid_raw_images(family):
    a = foreign.generate("image", family, np.random.default_rng(5), IMAGE)
    b = foreign.generate("image", family, np.random.default_rng(5), IMAGE)
    c = foreign.generate("image", family, np.random.default_rng(6), IMAGE)
    assert a.dtype == np.uint8 and a.shape == (28, 28)
    assert np.array_equal(a, b)  # same generator state, same picture
    assert not np.array_equal(a, c)  # another seed, another picture
    get_modality("image", IMAGE).to_tensor(a)  # the model can read it
    # the reader's polarity rule already applied: no light-background picture is left un-inverted
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    assert np.median(border) <= 127


@pytest.mark.parametrize("family", foreign.families_for("audio"))
def test_audio_families_are_seeded_valid_raw_waveforms(family):
    src = _speech_like()
    a = foreign.generate("audio", family, np.random.default_rng(5), AUDIO, source=src)
    b = foreign.generate("audio", family, np.random.default_rng(5), AUDIO, source=src)
    assert a.dtype == np.float32 and a.ndim == 1 and 1000 < a.size <= 8000
    assert np.array_equal(a, b)
    assert np.all(np.abs(a) <= 1.0) and np.abs(a).max() > 0.01  # audible, never clipped past full scale
    assert get_modality("audio", AUDIO).to_tensor(a).shape[0] == 1


def test_generators_never_touch_the_global_random_state():
    np.random.seed(3)
    before = np.random.random()
    np.random.seed(3)
    for kind, params in (("image", IMAGE), ("audio", AUDIO)):
        for fam in foreign.families_for(kind):
            foreign.generate(kind, fam, np.random.default_rng(0), params, source=_speech_like())
    assert np.random.random() == before


def test_reversed_speech_needs_a_source_and_unknown_families_are_named():
    with pytest.raises(ValueError, match="source"):
        foreign.generate("audio", "reversed_speech", np.random.default_rng(0), AUDIO)
    rev = foreign.generate("audio", "reversed_speech", np.random.default_rng(0), AUDIO, source=np.arange(4, dtype=np.float32) / 10)
    assert rev.tolist() == pytest.approx([0.3, 0.2, 0.1, 0.0])
    with pytest.raises(ValueError, match="checkerboard"):
        foreign.generate("image", "nonsense", np.random.default_rng(0), IMAGE)
    with pytest.raises(ValueError, match="kinds"):
        foreign.generate("text", "tone", np.random.default_rng(0), {})


def test_zoo_degrades_more_with_the_level_and_level_zero_is_identity():
    image, audio = get_modality("image", IMAGE), get_modality("audio", AUDIO)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    wave = _speech_like()
    for modality, raw in ((image, digit), (audio, wave)):
        for kind in [*zoo.zoo_kinds(modality.kind), f"{zoo.zoo_kinds(modality.kind)[0]}+{modality.corruption_kinds[0]}"]:
            assert np.array_equal(zoo.degrade(modality, raw, kind, 0.0, np.random.default_rng(0)), raw)
            low = zoo.degrade(modality, raw, kind, 3.0, np.random.default_rng(0))
            high = zoo.degrade(modality, raw, kind, 10.0, np.random.default_rng(0))
            assert low.dtype == raw.dtype and low.shape == raw.shape
            change = [np.abs(x.astype(np.float64) - raw).mean() for x in (low, high)]
            assert change[1] > change[0] > 0, kind
            again = zoo.degrade(modality, raw, kind, 10.0, np.random.default_rng(0))
            assert np.array_equal(again, high)


def test_zoo_refuses_unknown_kinds_and_eval_only_kinds_for_training():
    audio = get_modality("audio", AUDIO)
    with pytest.raises(ValueError, match=r"unknown audio corruptions \['wobble'\]"):
        zoo.check_kinds(audio, ["reverb+wobble"])
    with pytest.raises(ValueError, match="held out"):
        zoo.check_kinds(audio, ["hum"], training=True)
    zoo.check_kinds(audio, ["hum"], training=False)  # evaluation may use it


def test_shuffled_speech_keeps_the_voice_but_not_the_order():
    src = _speech_like(8000)
    out = foreign.generate("audio", "shuffled_speech", np.random.default_rng(1), AUDIO, source=src)
    assert out.size == src.size
    assert np.allclose(np.sort(out), np.sort(src))  # the same samples ...
    assert not np.allclose(out, src)  # ... in another order
    with pytest.raises(ValueError, match="source"):
        foreign.generate("audio", "shuffled_speech", np.random.default_rng(0), AUDIO)


def test_codec_like_holes_keep_a_tone_at_low_levels_and_thin_noise_at_high_ones():
    audio = get_modality("audio", AUDIO)
    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)).astype(np.float32)
    kept = zoo.degrade(audio, tone, "spectral_holes", 1.0, np.random.default_rng(0))
    assert np.abs(kept - tone)[300:-300].max() < 0.02  # one strong bin a frame: reconstructed
    noise = np.random.default_rng(2).normal(0, 0.1, 8000).astype(np.float32)
    thin = zoo.degrade(audio, noise, "spectral_holes", 10.0, np.random.default_rng(0))

    def top_share(x):  # share of a middle frame's energy in its 32 strongest of 129 bins
        power = np.sort(np.abs(np.fft.rfft(x[4000:4256] * np.hanning(256))) ** 2)[::-1]
        return power[:32].sum() / power.sum()

    assert top_share(noise) < 0.6 < 0.9 < top_share(thin)  # white noise is spread; what is left is a few bins


def test_spoken_words_plays_the_recording_it_is_given_at_a_random_level():
    with pytest.raises(ValueError, match="words that are not digits"):
        foreign.generate("audio", "spoken_words", np.random.default_rng(0), AUDIO)
    word = _speech_like(5000)
    out = foreign.generate("audio", "spoken_words", np.random.default_rng(2), AUDIO, source=word)
    assert out.shape == word.shape
    assert np.corrcoef(out, word)[0, 1] == pytest.approx(1.0)  # the same waveform, only louder or softer
    assert "spoken_words" in foreign.POOLED and foreign.POOLED <= foreign.NEEDS_SOURCE


def test_waveshaping_kinds_distort_without_holding_anything_flat_as_clipping_does():
    audio = get_modality("audio", AUDIO)
    t = np.arange(8000) / 8000
    sine = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)

    def harmonics(x):  # energy outside the 200 Hz fundamental, as a share of the whole
        power = np.abs(np.fft.rfft(x)) ** 2
        return 1 - power[195:206].sum() / power.sum()

    def flat(x):  # share of samples equal to the one before: a waveform held at a limit
        return np.mean(np.isclose(np.diff(x), 0.0, atol=1e-6))

    clipped = audio.corrupt(sine, "clipping", 5.0, np.random.default_rng(0))
    assert flat(clipped) > 0.3
    for kind in ("wavefold", "rectify"):
        out = zoo.degrade(audio, sine, kind, 5.0, np.random.default_rng(0))
        assert 0.4 < np.abs(out).max() <= 0.5 + 1e-6, kind  # no louder than the recording
        assert harmonics(out) > 0.03 > harmonics(sine), kind  # the tone is distorted ...
        assert flat(out) < 0.01, kind  # ... but nothing is held flat
