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


# ------------------------------------------------------------------ containers
def small_resnet():
    return tc.Sequential(
        layers.Conv2D(1, 2, 3, padding=1, bias=False, rng=0), layers.BatchNorm2D(2), layers.ReLU(),
        layers.Residual(layers.Conv2D(2, 4, 3, stride=2, padding=1, bias=False, rng=1), layers.BatchNorm2D(4),
                        shortcut=[layers.Conv2D(2, 4, 1, stride=2, bias=False, rng=2), layers.BatchNorm2D(4)]),
        layers.GlobalAvgPool2D(), layers.Dense(4, 3, rng=3), input_shape=(1, 6, 6))


def test_container_rows_are_indented_under_the_container_with_block_counts():
    summary = small_resnet().summary()
    names = [row[0] for row in summary.rows[1:]]
    assert names == ["Conv2D(1→2, k=3, p=1, no bias)", "BatchNorm2D(2)", "ReLU()",
                     "Residual(2 layers, shortcut: 2 layers)",
                     "  Conv2D(2→4, k=3, s=2, p=1, no bias)", "  BatchNorm2D(4)",
                     "  shortcut: Conv2D(2→4, k=1, s=2, no bias)", "  shortcut: BatchNorm2D(4)",
                     "GlobalAvgPool2D()", "Dense(4→3)"]
    block, *inner = summary.rows[4:9]
    # the block's row: its output shape and the sum of its inner layers, group by group
    assert block[1:] == ("(N, 4, 3, 3)", "96", "layers 80 + shortcut 16 = 96")
    assert [row[1:3] for row in inner] == [("(N, 4, 3, 3)", "72"), ("(N, 4, 3, 3)", "8"),
                                           ("(N, 4, 3, 3)", "8"), ("(N, 4, 3, 3)", "8")]
    assert sum(int(row[2]) for row in inner) == int(block[2])
    # every parameter is counted once in the total, not once more for its block
    assert summary.total == sum(p.size for p in small_resnet().parameters()) == 18 + 4 + 96 + 15
    lines = str(summary).splitlines()
    assert lines[6].startswith("  Conv2D(2→4, k=3, s=2") and lines[5].startswith("Residual(")
    assert "<td style='text-align:left'>&nbsp;&nbsp;shortcut: BatchNorm2D(4)</td>" in summary._repr_html_()


def test_nested_containers_indent_once_per_level_and_frozen_inner_layers_show():
    inner_block = layers.Residual(layers.Dense(3, 3, rng=0), layers.ReLU())
    model = tc.Sequential(layers.Residual(inner_block, layers.Dense(3, 3, rng=1)), input_shape=(3,))
    inner_block.freeze()
    summary = model.summary()
    assert [row[0] for row in summary.rows[1:]] == [
        "Residual(2 layers, identity shortcut)", "  Residual(2 layers, identity shortcut)",
        "    Dense(3→3)", "    ReLU()", "  Dense(3→3)"]
    assert [row[2] for row in summary.rows[1:]] == ["24 (12 frozen)", "12 frozen", "12 frozen", "0", "12"]
    assert (summary.total, summary.frozen) == (24, 12)


def test_resnet_mini_summary_lists_every_layer_once():
    model = tc.models.resnet_mini(widths=(2, 4), blocks_per_stage=1, input_size=8)
    summary = model.summary()
    leaves = [row for row in summary.rows[1:]
              if not row[0].lstrip().removeprefix("shortcut: ").startswith("Residual")]
    assert sum(int(row[2].replace(",", "")) for row in leaves) == summary.total == 400
    assert summary.rows[-1][1] == "(N, 10)"
