"""model.summary(): a table in a REPL and a notebook, and shape inference that fails early."""
import code
import contextlib
import importlib.util
import io

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers
from tinycnn.summary import ModelSummary


def lenet_like(input_shape=None, dense_in=16 * 5 * 5):
    return tc.Sequential(
        layers.Conv2D(1, 6, kernel_size=5, padding=2, rng=0), layers.ReLU(), layers.MaxPool2D(2),
        layers.Conv2D(6, 16, kernel_size=5, rng=1), layers.ReLU(), layers.MaxPool2D(2),
        layers.Flatten(), layers.Dense(dense_in, 120, rng=2), layers.ReLU(), layers.Dense(120, 10, rng=3),
        input_shape=input_shape)


def test_summary_is_the_table_when_echoed_in_a_repl():
    model = lenet_like()
    summary = model.summary(input_shape=(1, 28, 28))
    assert isinstance(summary, ModelSummary) and isinstance(summary, str)
    assert repr(summary) == str(summary)                 # no quotes, no \n escapes
    out = io.StringIO()
    console = code.InteractiveInterpreter({"model": model})
    with contextlib.redirect_stdout(out):
        console.runsource("model.summary(input_shape=(1, 28, 28))")
    echoed = out.getvalue()
    assert echoed.startswith("Layer ") and "\\n" not in echoed and "'" not in echoed
    assert echoed.splitlines()[2].split()[:4] == ["Conv2D(1→6,", "k=5,", "p=2)", "(N,"]
    assert echoed.rstrip().endswith("Total parameters: 51,902 (trainable: 51,902, frozen: 0)")


def test_summary_in_ipython_and_jupyter():
    summary = lenet_like().summary(input_shape=(1, 28, 28))

    class Printer:                                       # the one method IPython's printer offers
        text_out = ""

        def text(self, s):
            self.text_out += s

    printer = Printer()
    summary._repr_pretty_(printer, cycle=False)
    assert printer.text_out == str(summary)
    if importlib.util.find_spec("IPython") is not None:   # and through IPython itself
        from IPython.lib.pretty import pretty
        assert pretty(summary) == str(summary)
    page = summary._repr_html_()
    assert page.startswith("<table>") and page.count("<tr>") == len(lenet_like()) + 1
    assert "<td style='text-align:left'>Dense(400→120)</td>" in page and "51,902" in page


def test_summary_rows_and_counts():
    summary = lenet_like().summary(input_shape=(1, 28, 28))
    assert summary.rows[0] == ("Layer", "Output shape", "Params", "Formula")
    assert summary.rows[8] == ("Dense(400→120)", "(N, 120)", "48,120", "(400 + 1)·120 = 48,120")
    assert (summary.total, summary.trainable, summary.frozen) == (51_902, 51_902, 0)
    assert lenet_like().output_shapes((1, 28, 28))[5] == (16, 5, 5)


def test_summary_without_a_shape_shows_question_marks():
    model = tc.Sequential(layers.Flatten(), layers.Dense(4, 2, rng=0))
    assert "?" in model.summary().splitlines()[2]
    model.forward(np.zeros((3, 4), np.float32))          # the first call records the input shape
    assert "(N, 2)" in model.summary()


MISMATCH = ("layer 7, Dense(400→120) expects 400 input features, got 256 (hint: Dense(256, 120)); "
            "its input is the output of layer 6, Flatten(): 16·4·4 = 256")


def test_flatten_dense_mismatch_in_summary_names_both_sizes():
    with pytest.raises(ValueError) as err:
        lenet_like().summary(input_shape=(1, 24, 24))
    assert str(err.value) == "Sequential(input_shape=(1, 24, 24)): " + MISMATCH


def test_flatten_dense_mismatch_fails_at_build_time():
    with pytest.raises(ValueError, match=r"16·4·4 = 256"):
        lenet_like(input_shape=(1, 24, 24))
    lenet_like(input_shape=(1, 28, 28))                  # the right shape builds
    with pytest.raises(ValueError, match=r"Dense\(300→120\) expects 300 input features, got 400"):
        lenet_like(input_shape=(1, 28, 28), dense_in=300)


@pytest.mark.parametrize("stack, shape, message", [
    ([layers.Conv2D(3, 4, kernel_size=3)], (1, 28, 28),
     r"layer 0, Conv2D\(3→4, k=3\) expects a per-sample input \(3, H, W\), got \(1, 28, 28\); "
     r"the model's input shape is \(1, 28, 28\)"),
    ([layers.Conv2D(1, 4, kernel_size=3), layers.Dense(100, 2)], (1, 6, 6),
     r"Dense\(100→2\) expects a flat input \(features,\), got \(4, 4, 4\); hint: put a Flatten\(\)"),
    ([layers.Conv2D(1, 4, kernel_size=5), layers.MaxPool2D(3)], (1, 6, 6),
     r"layer 1, MaxPool2D\(3\) would output the empty shape \(4, 0, 0\) from \(4, 2, 2\)"),
    ([layers.Conv2D(1, 4, kernel_size=7)], (1, 6, 6), r"kernel 7×7 is larger than the padded input 6×6"),
])
def test_other_shape_errors_name_layer_and_sizes(stack, shape, message):
    with pytest.raises(ValueError, match=message):
        tc.Sequential(*stack).summary(input_shape=shape)


def test_models_is_available_after_import():
    import tinycnn
    assert tinycnn.models.lenet5().summary().total == 61_706
