"""The explainer page in a real browser: headless Chromium driven by Playwright.

The page is opened from ``file://``. Checks: exactly one request (the page itself) and no
console errors; every layer value the page holds equals tinycnn's forward pass within
1e-5·max(1, |v|); the page's own recomputation of every unit passes; a mouse click on a
unit of every layer (and on a class bar) opens a panel whose recomputed value equals the
activation; the screenshot is not blank. Needs the browser extra and Debian's chromium;
both are installed by .ci/run, and their absence fails the test when CI=true.
"""
import io
import os
import shutil

import numpy as np
import pytest
from explain_models import MODELS, image_for
from optional import require

sync_api = require("playwright.sync_api")

from tinycnn.explain import save_explainer  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError("CI=true but no chromium executable is on PATH")
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_page_in_chromium(browser, name, tmp_path):
    model = MODELS[name]().eval()
    x = image_for(model, seed=1)
    path = save_explainer(model, x, tmp_path / f"{name}.html")
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    requests, problems = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"file://{path}")
    page.wait_for_function("window.tinycnnExplain !== undefined")

    assert requests == [f"file://{path}"]
    assert problems == []

    # every value the page draws is tinycnn's forward pass
    shown = page.evaluate("tinycnnExplain.layers.map(L => Array.from(L.out.data))")
    a = x[None]
    for k, layer in enumerate(model.layers):
        a = layer.forward(a)
        want = a[0].ravel().astype(np.float64)
        got = np.asarray(shown[k])
        assert np.all(np.abs(got - want) <= 1e-5 * np.maximum(1, np.abs(want))), repr(layer)

    check = page.evaluate("tinycnnExplain.selfCheck()")
    assert check["passed"] and check["units"] > 0, check
    assert "Self-check: this page recomputed all" in page.inner_text("#selfcheck")

    # a real click on one unit of every layer opens a panel whose sum equals the activation
    kinds = set()
    for k in range(len(model.layers)):
        canvas = page.locator(f"#layer-{k} .maps canvas").first
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.55)
        verdict = page.locator("#detail-body .verdict")
        assert "✓" in verdict.inner_text(), (k, verdict.inner_text())
        page_value = float(verdict.get_attribute("data-page"))
        tinycnn_value = float(verdict.get_attribute("data-tinycnn"))
        assert abs(page_value - tinycnn_value) <= 1e-5 * max(1, abs(tinycnn_value))
        kinds.add(page.locator("#detail-body .panel").get_attribute("data-kind"))
        if k == 0:                               # arrow keys move the selected unit
            before = page.inner_text("#detail-body h3")
            page.keyboard.press("ArrowRight")
            assert page.inner_text("#detail-body h3") != before
    page.locator(".bar-row").first.click()       # the softmax/sigmoid panel
    assert "✓" in page.locator("#detail-body .verdict").inner_text()
    kinds.add(page.locator("#detail-body .panel").get_attribute("data-kind"))
    expected = {"conv", "dense", "flatten", "softmax"} if name == "lenet5" else set()
    if name == "every_layer":
        expected = {"conv", "maxpool", "avgpool", "act", "identity", "flatten", "dense", "softmax"}
    if name == "resnet":
        expected = {"conv", "batchnorm", "residual", "gap", "dense", "softmax"}
    assert expected <= kinds, kinds

    from PIL import Image
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("L"), dtype=np.float64)
    assert shot.std() > 10 and len(np.unique(shot)) > 50      # not blank
    page.close()
