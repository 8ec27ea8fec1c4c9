"""Flags: what an analyst is pointed at first, from a pair's stored numbers alone."""

from __future__ import annotations

from app.review.flags import (
    FLAG_DISAGREEMENT,
    FLAG_ERROR,
    FLAG_LABEL_MISMATCH,
    FLAG_LOW_CONFIDENCE,
    FlagThresholds,
    compute_flags,
    low_quality_flag,
)

AGREE = {"image": {"label": "3", "share": 0.7}, "audio": {"label": "3", "share": 0.3}}
SPLIT = {"image": {"label": "3", "share": 0.9}, "audio": {"label": "8", "share": 0.1}}


def test_a_confident_agreeing_correct_pair_has_no_flags():
    assert compute_flags(0.95, "3", AGREE, "3", FlagThresholds()) == []


def test_each_suspicion_gets_its_flag_in_a_fixed_order():
    flags = compute_flags(0.4, "3", SPLIT, "5", FlagThresholds())
    assert flags == [low_quality_flag("audio"), FLAG_DISAGREEMENT, FLAG_LOW_CONFIDENCE, FLAG_LABEL_MISMATCH]
    assert low_quality_flag("audio") == "low-quality audio"


def test_zero_thresholds_and_switches_turn_flags_off():
    off = FlagThresholds(low_share=0.0, low_confidence=0.0, disagreement=False, label_mismatch=False)
    assert compute_flags(0.4, "3", SPLIT, "5", off) == []


def test_an_error_row_has_only_the_error_flag_and_an_unlabelled_pair_no_mismatch():
    assert compute_flags(None, None, {}, "5", FlagThresholds(), error="a.wav: not a sound file") == [FLAG_ERROR]
    assert FLAG_LABEL_MISMATCH not in compute_flags(0.95, "3", AGREE, None, FlagThresholds())


def test_thresholds_survive_the_session_file_and_ignore_unknown_keys():
    th = FlagThresholds(low_share=0.1, low_confidence=0.5, disagreement=False)
    assert FlagThresholds.from_dict(th.to_dict()) == th
    assert FlagThresholds.from_dict({"low_share": 0.2, "from_a_newer_version": 1}) == FlagThresholds(low_share=0.2)
    assert FlagThresholds.from_dict(None) == FlagThresholds()
