"""An interactive page that opens up a trained tinycnn model, one file, offline.

``explain_page(model, x)`` runs ``x`` through ``model`` and returns one self-contained
HTML page: every layer's output drawn as heat maps, the prediction, saliency and Grad-CAM,
and -- on a click on any unit -- the unit's computation with the model's own numbers
(the window times the kernel plus the bias for a convolution, the winning cell of a max-pool
window, the largest products of a dense unit, ...), recomputed in the page and compared
with what tinycnn computed. No server, no network: the page's JavaScript and CSS
(``page.js``, ``page.css``, ``page.html`` in this folder, readable on their own) are inlined
at write time under a strict Content-Security-Policy, and the numbers are embedded as
base64 float32.

>>> import numpy as np, tinycnn as tc
>>> from tinycnn.explain import explain_page
>>> page = explain_page(tc.models.lenet5(), np.zeros((1, 28, 28), np.float32))
>>> page.startswith("<!DOCTYPE html>") and "http://" not in page
True
"""
from tinycnn.explain.data import SUPPORTED, explain_data
from tinycnn.explain.page import explain_page, save_explainer

__all__ = ["explain_page", "save_explainer", "explain_data", "SUPPORTED"]
