"""Which input a file goes to, and the one line a person reads about a file that has no place."""

from __future__ import annotations

from app.modalities.routing import route_files

INPUTS = [{"name": "image", "kind": "image"}, {"name": "audio", "kind": "audio"}]


def test_files_go_to_the_input_of_their_kind_whatever_their_order():
    files, problems = route_files(INPUTS, ["b/three.wav", "a/three.png"])
    assert files == {"image": "a/three.png", "audio": "b/three.wav"} and problems == []


def test_a_second_file_of_a_kind_and_an_unknown_type_are_named_in_plain_words():
    files, problems = route_files(INPUTS, ["one.wav", "two.wav", "notes.xyz"], given={"image": "digit.png"})
    assert files == {"image": "digit.png", "audio": "one.wav"}
    assert [p.path for p in problems] == ["two.wav", "notes.xyz"]
    assert problems[0].message == "two.wav: an audio file, but the audio input (audio) is already given"
    assert problems[1].kind is None and problems[1].message.startswith("notes.xyz: not a file type QMF Studio opens")
    _, image_only = route_files([{"name": "image", "kind": "image"}], ["voice.wav"])
    assert image_only[0].message == "voice.wav: an audio file, but the model takes image"
    _, audio_only = route_files([{"name": "audio", "kind": "audio"}], ["digit.png"])
    assert audio_only[0].message == "digit.png: an image file, but the model takes audio"
