"""The explainer page, checked from Python: self-contained, exact data, clear errors."""
import re

import numpy as np
import pytest
from explain_models import MODELS, image_for, page_data

import tinycnn as tc
from tinycnn.explain import explain_data, explain_page, save_explainer
from tinycnn.explain.data import decode


@pytest.mark.parametrize("name", sorted(MODELS))
def test_page_is_self_contained(name):
    model = MODELS[name]()
    page = explain_page(model, image_for(model))
    assert page.startswith("<!DOCTYPE html>")
    # no http(s):// or protocol-relative URL in any src/href, and a CSP that forbids requests
    for attr in re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page):
        assert not re.match(r"^(https?:)?//", attr), attr
    assert "default-src 'none'" in page
    assert "<script src" not in page and "<link rel=\"stylesheet\"" not in page


@pytest.mark.parametrize("name", sorted(MODELS))
def test_decoded_data_equals_the_forward_pass_exactly(name):
    model = MODELS[name]().eval()
    x = image_for(model)
    data = page_data(explain_page(model, x))
    a = x[None]
    for layer, row in zip(model.layers, data["layers"]):
        a = layer.forward(a)
        assert np.array_equal(decode(row["output"]), a[0]), row["repr"]
        for p in ([] if layer.children() else layer.parameters()):
            assert np.array_equal(decode(row["params"][p.name]), p.data)
        for name, value in layer.state_arrays().items():
            assert np.array_equal(decode(row["params"][name]), value)
    assert np.array_equal(decode(data["input"]["model"]), x)
    np.testing.assert_allclose(data["probabilities"], model.predict(x[None])[0], rtol=1e-6, atol=1e-7)


def test_lenet_page_stays_well_under_a_megabyte():
    model = MODELS["lenet5"]()
    size = len(explain_page(model, image_for(model)).encode())
    assert size < 700_000, size


def test_the_model_is_left_as_it_was():
    model = MODELS["every_layer"]()
    before = [p.data.copy() for p in model.parameters()]
    explain_data(model, image_for(model))
    assert model.training                                  # mode restored
    assert all(np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))
    assert all(np.all(p.grad == 0) for p in model.parameters())


def test_bad_input_is_named():
    model = MODELS["lenet5"]()
    with pytest.raises(ValueError, match=r"expects images of shape \(1, 28, 28\), got \(1, 32, 32\)"):
        explain_page(model, np.zeros((1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="one image"):
        explain_page(model, np.zeros((2, 1, 28, 28), np.float32))

    class Custom(tc.layers.ReLU):
        pass
    with pytest.raises(TypeError, match=r"Custom\(\).*supported layers"):
        explain_page(tc.Sequential(tc.layers.Flatten(), Custom(), input_shape=(1, 2, 2)),
                     np.zeros((1, 2, 2), np.float32))


def test_save_explainer_writes_the_page(tmp_path):
    model = MODELS["lesion_cnn"]()
    path = save_explainer(model, image_for(model), tmp_path / "page.html")
    assert open(path, encoding="utf-8").read().startswith("<!DOCTYPE html>")
