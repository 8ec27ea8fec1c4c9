"""An animated image is read (its first frame) with a warning that says so, naming the file."""

import warnings

import numpy as np
from PIL import Image

from app.modalities import InputWarning, get_modality


def test_animated_gif_warns_that_only_the_first_frame_is_used(tmp_path):
    frames = [Image.fromarray(np.full((28, 28), v, dtype=np.uint8)) for v in (10, 200)]
    gif = tmp_path / "moving.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = get_modality("image", {"size": [28, 28], "channels": 1}).load(gif)
    notes = [w.message for w in caught if isinstance(w.message, InputWarning)]
    assert len(notes) == 1 and str(notes[0]) == f"{gif}: an animated image with 2 frames: only the first frame is used"
    assert raw.shape[:2] == (28, 28)


def test_still_image_reads_without_a_warning(tmp_path):
    still = tmp_path / "still.gif"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(still)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        get_modality("image", {"size": [28, 28], "channels": 1}).load(still)
