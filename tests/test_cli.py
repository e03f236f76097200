"""The command line: a short real training run, evaluate, predict on the shipped sample
drawings, bench's output folder, and every mistake as one line with exit code 2."""
import json
import struct
import sys

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers
from tinycnn.cli import main
from tinycnn.cli_checks import decide
from tinycnn.datasets.mnist import DATA_DIR

SAMPLES = DATA_DIR / "samples"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    # seed 0: the shipped sample digits sit in this run's held-out test split
    assert main(["train", "--epochs", "5", "--limit", "3000", "--out", str(out), "--seed", "0"]) == 0
    (folder,) = list(out.iterdir())
    return folder


def one_line_error(capsys, argv):
    """Run ``argv``; it must fail with exit code 2 and one line on stderr, returned."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tinycnn: error: "), err
    assert "Traceback (most recent" not in err and "allow_pickle" not in err
    return err


def test_train_writes_a_complete_run_folder(run_folder):
    names = sorted(p.name for p in run_folder.iterdir())
    assert names == ["confusion.png", "curves.png", "feature_maps.png", "filters.png",
                     "history.json", "model.npz"]
    record = json.loads((run_folder / "history.json").read_text())
    assert record["history"]["epoch"] == [1, 2, 3, 4, 5]
    assert 0.8 < record["test_accuracy"] <= 1.0          # 5 epochs on 2,700 digits: measured 95.5 %
    for png in run_folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tc.load_model(run_folder / "model.npz").meta["background"] == "dark"


def test_evaluate_and_predict_an_npy(run_folder, tmp_path, capsys):
    assert main(["evaluate", str(run_folder / "model.npz")]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "precision" in out and "confusion matrix" in out
    from tinycnn.datasets import load_mnist5k
    _, (x_test, _) = load_mnist5k(seed=0)
    np.save(tmp_path / "digit.npy", x_test[0])
    assert main(["predict", str(run_folder / "model.npz"), str(tmp_path / "digit.npy")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("class: ")
    probs = [float(line.split()[-1]) for line in out.splitlines()[1:]]
    assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-3


def predicted(out):
    line = next(l for l in out.splitlines() if l.startswith("class: "))
    return line.split()[1]


def test_predict_the_shipped_drawings_inverting_black_on_white(run_folder, tmp_path, capsys):
    model = str(run_folder / "model.npz")
    assert main(["predict", model, str(SAMPLES / "digit_7.png")]) == 0
    plain = capsys.readouterr().out
    assert "note:" not in plain and predicted(plain) == "7"
    assert main(["predict", model, str(SAMPLES / "digit_2.png")]) == 0
    assert predicted(capsys.readouterr().out) == "2"
    # the same 7 as black ink on white paper, 140 px: inverted and shrunk, with notes
    assert main(["predict", model, str(SAMPLES / "digit_7_paper.png")]) == 0
    paper = capsys.readouterr().out
    assert "note: inverted the image (1 - x): the image has a bright background" in paper
    assert "note: framed the drawing like MNIST" in paper and "ink box scaled to 20×16" in paper
    assert predicted(paper) == "7"
    from PIL import Image                              # a colour JPEG photo of the drawing
    Image.open(SAMPLES / "digit_7_paper.png").convert("RGB").save(tmp_path / "photo.jpg", quality=90)
    assert main(["predict", model, str(tmp_path / "photo.jpg")]) == 0
    photo = capsys.readouterr().out
    assert "note: converted colour to gray" in photo and "note: inverted" in photo
    assert predicted(photo) == "7"
    assert main(["predict", "--invert", "no", "--frame", "no", model, str(SAMPLES / "digit_7_paper.png")]) == 0
    kept = capsys.readouterr().out
    assert "inverted" not in kept and "note: resized 140×140 -> 28×28 (area average, anti-aliased)" in kept
    assert kept.splitlines()[1:] != paper.splitlines()[2:]


def test_framing_rescues_a_small_drawing_in_a_big_photo(run_folder):
    """Digits drawn small somewhere on a gray sheet: shrinking the whole photo leaves a
    speck; framing them like MNIST (as predict does) gives the model what it knows."""
    from PIL import Image
    from tinycnn.cli import _normalise_for
    from tinycnn.datasets import load_mnist5k
    from tinycnn.datasets.images import fit_to_input
    model = tc.load_model(run_folder / "model.npz")
    _, (x, y) = load_mnist5k(seed=0, raw=True)
    rng = np.random.default_rng(0)
    fitted = {True: [], False: []}
    for k in range(60):
        ink = np.asarray(Image.fromarray(x[k, 0]).resize((140, 140), Image.Resampling.BICUBIC)) / 255
        sheet = np.zeros((300, 400))
        r, c = rng.integers(0, 160), rng.integers(0, 260)
        sheet[r:r + 140, c:c + 140] = ink
        photo = (0.85 - 0.7 * sheet)[None]                     # dark gray ink on light gray paper
        for frame in fitted:
            fitted[frame].append(fit_to_input(photo, (1, 28, 28), background="dark", frame=frame)[0])
    acc = {frame: np.mean(model.predict(_normalise_for(model, np.stack(v))).argmax(1) == y[:60])
           for frame, v in fitted.items()}
    assert acc[True] >= 0.85 and acc[False] <= 0.5, acc


def test_readme_names_a_shipped_sample():
    import re
    readme = (DATA_DIR.parents[2] / "README.md").read_text()
    named = re.findall(r"tinycnn/datasets/data/samples/(\w+\.png)", readme)
    assert named and all((SAMPLES / name).is_file() for name in named)


def test_binary_predict_uses_the_stored_threshold(tmp_path, capsys):
    model = tc.Sequential(layers.Flatten(), layers.Dense(4, 2, rng=0), input_shape=(1, 2, 2))
    model.layers[1].weight.data[:] = 0
    model.layers[1].bias.data[:] = np.log([0.7, 0.3], dtype=np.float32)   # p(lesion) = 0.3
    model.meta.update({"class_names": ["healthy", "lesion"], "threshold": 0.25})
    model.save(tmp_path / "binary.npz")
    np.save(tmp_path / "patch.npy", np.full((2, 2), 0.5, np.float32))
    assert main(["predict", str(tmp_path / "binary.npz"), str(tmp_path / "patch.npy")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("class: lesion (score 0.300 >= threshold 0.250")    # argmax says healthy
    # evaluate decides by the same rule: every test image scores 0.3 >= 0.25 -> all "lesion"
    arrays = {f"{split}_{k}": v for split in ("train", "val", "test") for k, v in
              (("images", np.full((4, 2, 2), 128, np.uint8)), ("labels", np.array([[0], [1], [0], [0]])))}
    np.savez(tmp_path / "tiny.npz", **arrays)
    assert main(["evaluate", str(tmp_path / "binary.npz"), "--dataset", "medmnist",
                 "--data", str(tmp_path / "tiny.npz")]) == 0
    out = capsys.readouterr().out
    assert "decision: positive when the score is >= 0.25 (stored with the model" in out
    assert "accuracy: 25.00%" in out and "[[0 3]\n [0 1]]" in out
    probs = np.array([[0.7, 0.3], [0.9, 0.1]])
    assert decide(model, probs)[0].tolist() == [1, 0]
    del model.meta["threshold"]
    assert decide(model, probs) [0].tolist() == [0, 0] and decide(model, probs)[1] is None


def write_idx(folder, images, labels):
    n, r, c = images.shape
    (folder / "img").write_bytes(struct.pack(">IIII", 0x803, n, r, c) + images.tobytes())
    (folder / "lab").write_bytes(struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())


def test_mistakes_found_before_training(run_folder, tmp_path, capsys):
    (tmp_path / "afile").write_text("in the way")
    err = one_line_error(capsys, ["train", "--out", str(tmp_path / "afile" / "runs")])
    assert "afile is a file, not a folder; choose another --out" in err
    err = one_line_error(capsys, ["train", "--limit", "50", "--out", str(tmp_path)])
    assert err.endswith("--limit 50 is too small to make a validation split: it keeps 5 images of "
                        "class 0, and --val-split 0.1 needs at least one of each class on both "
                        "sides; use --limit 55 or more")
    rng = np.random.default_rng(0)
    write_idx(tmp_path, rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), np.arange(40) % 2)
    err = one_line_error(capsys, ["train", "--dataset", "idx", "--data", str(tmp_path / "img"),
                                  "--labels", str(tmp_path / "lab"), "--out", str(tmp_path)])
    assert "square images of at least 12×12; the idx data holds images of 1×8×8" in err
    arrays = {f"{s}_{k}": v for s in ("train", "val", "test") for k, v in
              (("images", rng.integers(0, 256, (4, 32, 32), dtype=np.uint8)),
               ("labels", np.arange(4)[:, None] % 2))}
    np.savez(tmp_path / "med.npz", **arrays)
    err = one_line_error(capsys, ["evaluate", str(run_folder / "model.npz"), "--dataset",
                                  "medmnist", "--data", str(tmp_path / "med.npz")])
    assert err.endswith("the model expects images of 1×28×28 (C×H×W) but the medmnist test "
                        "split holds images of 1×32×32")
    assert list(tmp_path.glob("2*")) == []                 # no run folder was started


def test_wrong_files_say_what_they_are(run_folder, tmp_path, capsys):
    model, seven = str(run_folder / "model.npz"), str(SAMPLES / "digit_7.png")
    err = one_line_error(capsys, ["predict", seven, model])
    assert "digit_7.png is not a tinycnn model file (it is a PNG image)" in err
    assert "the arguments look swapped (usage: tinycnn predict MODEL IMAGE)" in err
    err = one_line_error(capsys, ["predict", seven, seven])
    assert "is not a tinycnn model file (it is a PNG image); a model file is the model.npz" in err
    (tmp_path / "notes.txt").write_text("not a model")
    err = one_line_error(capsys, ["evaluate", str(tmp_path / "notes.txt")])
    assert "notes.txt is not a tinycnn model file (it is not a .npz archive)" in err
    np.savez(tmp_path / "data.npz", images=np.zeros((2, 2)))
    err = one_line_error(capsys, ["predict", str(tmp_path / "data.npz"), seven])
    assert "data.npz is not a" in err and "tinycnn model file" in err       # from load_model
    err = one_line_error(capsys, ["predict", model, str(tmp_path)])
    assert err.endswith(f"IMAGE {tmp_path} is a directory, not an image file "
                        "(usage: tinycnn predict MODEL IMAGE)")
    err = one_line_error(capsys, ["predict", str(run_folder), seven])
    assert err.endswith(f"is a directory, not a model file; pass the model file inside it: {model}")
    err = one_line_error(capsys, ["predict", model, model])
    assert err.endswith(f"IMAGE {model} is a .npz archive (a model or a dataset?), not an image; "
                        "expected a PNG, JPEG or .npy file (usage: tinycnn predict MODEL IMAGE)")
    err = one_line_error(capsys, ["predict", model, str(tmp_path / "none.png")])
    assert err.endswith("no such image file: " + str(tmp_path / "none.png"))


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--epochs", "0"], "--epochs must be >= 1"),
    (["train", "--lr", "-1"], "--lr must be > 0"),
    (["train", "--limit", "-5"], "--limit must be >= 0"),
    (["train", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["train", "--dataset", "medmnist"], "--dataset medmnist needs --data PATH"),
    (["train", "--dataset", "idx", "--data", "/no/such/file.gz"], "no such file: /no/such/file.gz"),
    (["evaluate", "/no/such/model.npz"], "no such model file"),
    (["bench", "--render"], "bench --render rebuilds the report of an earlier run"),
    ([], "choose a command"),
])
def test_mistakes_print_one_line_and_exit_2(argv, fragment, capsys):
    assert fragment in one_line_error(capsys, argv)


def test_corrupt_data_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip file")
    err = one_line_error(capsys, ["train", "--dataset", "medmnist", "--data", str(bad)])
    assert err.endswith(f"{bad} is not a MedMNIST .npz file (it is not a .npz archive)")


def test_bench_writes_to_a_fresh_folder_unless_out_is_given(monkeypatch, tmp_path, capsys):
    from tinycnn import cli
    calls = []
    monkeypatch.setattr(cli, "_run_bench_script", lambda path, argv: calls.append((str(path), argv)) or 0)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quick", "--threads", "1"]) == 0
    assert main(["bench", "--", "--no-torch", "--out", "mine"]) == 0
    assert calls[0][0].endswith("benchmarks/run.py")
    rest = calls[0][1]
    assert rest[:3] == ["--quick", "--threads", "1"]
    assert rest[3] == "--out" and rest[4].startswith("runs/bench-") and (tmp_path / rest[4]).is_dir()
    assert f"benchmark results go to {rest[4]}/" in capsys.readouterr().err
    assert calls[1][1] == ["--no-torch", "--out", "mine"]               # explicit: passed as is
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [rest[4].split("/")[1]]


def test_bench_help_names_tinycnn_bench(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:               # the real benchmarks/run.py parser
        main(["bench", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("tinycnn bench: ") and "runs/bench-<time>/" in out
    assert "usage: tinycnn bench" in out and "--out" in out
    assert not (tmp_path / "runs").exists()
