"""Assemble the explainer page: ``page.html`` with ``page.css``, ``page.js`` and the data inlined.

The Content-Security-Policy allows nothing but the page's own script and style (by their
SHA-256 hashes) and ``data:`` images: no request can leave the file, which is the point.
"""
import base64
import hashlib
import html
import json
import os
from importlib import resources

from tinycnn.explain.data import explain_data

__all__ = ["explain_page", "save_explainer"]


def _asset(name):
    return resources.files("tinycnn.explain").joinpath(name).read_text(encoding="utf-8")


def _sha256(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def explain_page(model, x, raw=None, class_names=None, title=None):
    """One self-contained HTML page (a string) explaining ``model`` on the image ``x``.

    ``x``: one model-ready image ``(C, H, W)``; ``raw``: the same before normalisation, for
    display; ``class_names``: default ``model.meta["class_names"]``. See :mod:`tinycnn.explain`.
    """
    data = explain_data(model, x, raw=raw, class_names=class_names, title=title)
    css, js = _asset("page.css"), _asset("page.js")
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    csp = (f"default-src 'none'; script-src {_sha256(js)}; style-src {_sha256(css)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    page = _asset("page.html")
    for key, value in (("CSP", csp), ("TITLE", html.escape(data["title"])), ("CSS", css),
                       ("DATA", payload), ("JS", js)):
        page = page.replace("{{" + key + "}}", value)
    return page


def save_explainer(model, x, path, **kwargs):
    """Write :func:`explain_page` to ``path`` (atomically); returns the path."""
    page = explain_page(model, x, **kwargs)
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
    return path
