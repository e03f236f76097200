"""Reading real image files (Pillow) and fitting a drawing to a model's input."""
import numpy as np
import pytest
from PIL import Image

from tinycnn.datasets import load_image, load_mnist5k
from tinycnn.datasets.images import border_level, fit_to_input, frame_digit
from tinycnn.datasets.mnist import DATA_DIR

SAMPLES = DATA_DIR / "samples"


def test_shipped_samples_are_held_out_mnist_digits():
    _, (x_test, y_test) = load_mnist5k(seed=0)           # the test split of the default seed
    for name, label in (("digit_2.png", 2), ("digit_7.png", 7)):
        x = load_image(SAMPLES / name)
        assert x.shape == (1, 28, 28)
        same = np.flatnonzero(np.all(x_test[:, 0] == x[0], axis=(1, 2)))
        assert len(same) == 1 and y_test[same[0]] == label
    paper = load_image(SAMPLES / "digit_7_paper.png")
    assert paper.shape == (1, 140, 140) and border_level(paper) > 0.9     # black ink on white


def test_jpeg_and_transparent_png(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, :15] = (200, 40, 10)
    Image.fromarray(img).save(tmp_path / "photo.jpg", quality=95)
    x = load_image(tmp_path / "photo.jpg")
    assert x.shape == (3, 20, 30) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 5, 3], np.array([200, 40, 10]) / 255, atol=0.05)   # JPEG is lossy
    ink = np.zeros((8, 8, 4), np.uint8)                  # black ink on a transparent canvas
    ink[2:6, 3, 3] = 255
    Image.fromarray(ink, "RGBA").save(tmp_path / "canvas.png")
    x = load_image(tmp_path / "canvas.png", grayscale=True)
    assert x.shape == (1, 8, 8) and x[0, 0, 0] == 1.0 and x[0, 3, 3] == 0.0     # paper is white
    Image.fromarray(np.full((4, 5), 40000, np.uint16)).save(tmp_path / "deep.png")
    np.testing.assert_allclose(load_image(tmp_path / "deep.png"), 40000 / 65535, rtol=1e-6)


def test_unreadable_inputs_say_what_they_are(tmp_path):
    with pytest.raises(ValueError, match="is a directory, not an image file"):
        load_image(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_image(tmp_path / "nothing.png")
    np.savez(tmp_path / "model.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match=r"\.npz archive .* not an image"):
        load_image(tmp_path / "model.npz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="cannot read .*notes.txt as an image"):
        load_image(tmp_path / "notes.txt")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a plain numeric .npy array") as err:
        load_image(tmp_path / "objects.npy")
    assert "allow_pickle" not in str(err.value)


def test_thin_pen_drawing_keeps_its_ink_when_shrunk():
    paper = np.ones((1, 280, 280), np.float32)            # a 280 px drawing, 3 px pen
    paper[0, 40:240, 140:143] = 0.0                       # strokes apart, inside 10 px blocks
    paper[0, 20:23, 60:220] = 0.0
    x, notes = fit_to_input(paper, (1, 28, 28), background="dark")
    assert x.shape == (1, 28, 28)
    ink_before, ink_after = (1 - paper).mean(), x.mean()
    assert ink_after == pytest.approx(ink_before, rel=1e-5)          # box filter: area average
    assert x.max() == pytest.approx(0.3, abs=1e-5)                   # 3 px of 10 per output pixel
    assert any("inverted" in n for n in notes) and any("280×280 -> 28×28" in n for n in notes)


def test_inversion_follows_the_training_background():
    dark = np.zeros((1, 28, 28), np.float32)
    dark[0, 10:18, 12:15] = 1.0
    x, notes = fit_to_input(dark, (1, 28, 28), background="dark")
    np.testing.assert_array_equal(x, dark) and not notes
    x, notes = fit_to_input(1 - dark, (1, 28, 28), background="dark")
    np.testing.assert_allclose(x, dark)
    assert "bright background" in notes[0]
    x, _ = fit_to_input(1 - dark, (1, 28, 28), background=None)     # unknown: leave it alone
    np.testing.assert_allclose(x, 1 - dark)
    x, _ = fit_to_input(1 - dark, (1, 28, 28), background="dark", invert="no")
    np.testing.assert_allclose(x, 1 - dark)
    x, _ = fit_to_input(dark, (1, 28, 28), background="dark", invert="yes")
    np.testing.assert_allclose(x, 1 - dark)
    with pytest.raises(ValueError, match="invert must be"):
        fit_to_input(dark, (1, 28, 28), invert="maybe")


def test_channels_are_matched_to_the_model():
    rgb = np.random.default_rng(0).random((3, 6, 6)).astype(np.float32)
    x, notes = fit_to_input(rgb, (1, 6, 6))
    np.testing.assert_allclose(x[0], 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2], rtol=1e-6)
    assert "gray" in notes[0]
    x, _ = fit_to_input(rgb[:1], (3, 6, 6))
    assert x.shape == (3, 6, 6) and np.array_equal(x[2], rgb[0])


def test_frame_digit_like_mnist():
    photo = np.full((1, 90, 120), 0.3, np.float32)          # gray paper (after inversion)
    photo[0, 10:60, 80:100] = 0.9                            # a 50×20 px block of ink
    x, note = frame_digit(photo, (28, 28))
    assert x.shape == (1, 28, 28) and x.min() == 0.0 and x.max() == pytest.approx(1.0)
    rows, cols = np.flatnonzero(x[0].any(axis=1)), np.flatnonzero(x[0].any(axis=0))
    assert (len(rows), len(cols)) == (20, 8)                 # longer side 20, aspect kept
    m = x[0] / x[0].sum()
    com = (m.sum(axis=1) @ np.arange(28), m.sum(axis=0) @ np.arange(28))
    assert np.allclose(com, 13.5, atol=0.5)                  # centre of mass at the centre
    assert "background 0.30 -> 0" in note and "50×20 px ink box scaled to 20×8" in note
    x, note = frame_digit(np.full((1, 40, 40), 0.5, np.float32), (28, 28))
    assert x is None and "no ink" in note
    y, notes = fit_to_input(np.full((1, 40, 40), 0.5, np.float32), (1, 28, 28), frame=True)
    assert y.shape == (1, 28, 28) and "no ink" in notes[0] and "resized 40×40" in notes[1]
