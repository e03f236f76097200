"""The math-to-code map (docs/math_to_code.md) cannot rot.

The map quotes code in a fixed, parseable form::

    `tinycnn/kernels/reference.py::conv2d_forward` — optional remark
    ```python
    y += b.reshape(1, F, 1, 1)
    ```

and links functions as ``[reference.conv2d_forward](../tinycnn/kernels/reference.py)``.
These tests fail when a referenced file or function (``Class.method`` for methods) no
longer exists, when a quoted line no longer appears in that function's source (compared
with leading/trailing whitespace stripped), or when one of the items the map must cover
has no section. Functions are found with ``ast`` from the file's text, so nothing is
imported or compiled.
"""
import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "math_to_code.md"

MARKER = re.compile(r"^`(?P<path>[\w./-]+\.py)::(?P<qual>[\w.]+)`(?P<remark>.*)$")
LINK = re.compile(r"\[(?P<text>[\w.]+)\]\((?P<target>[^)#\s]+\.py)\)")

# Every item the map must cover: a "## " heading containing the key, and the files its
# section must quote from. "fast" means any module of the Numba backend.
FAST_MODULES = ("tinycnn/kernels/fast.py", "tinycnn/kernels/numba_conv.py",
                "tinycnn/kernels/numba_paths.py", "tinycnn/kernels/numba_pool.py")
REQUIRED = {
    "Conv2D": ["tinycnn/kernels/reference.py", "fast", "tinycnn/layers/conv.py"],
    "MaxPool2D": ["tinycnn/kernels/reference.py", "fast", "tinycnn/layers/pooling.py"],
    "AvgPool2D": ["tinycnn/kernels/reference.py", "fast", "tinycnn/layers/pooling.py"],
    "Dense": ["tinycnn/kernels/reference.py", "fast", "tinycnn/layers/dense.py"],
    "ReLU": ["tinycnn/layers/activations.py"],
    "LeakyReLU": ["tinycnn/layers/activations.py"],
    "Sigmoid": ["tinycnn/layers/activations.py"],
    "Tanh": ["tinycnn/layers/activations.py"],
    "Dropout": ["tinycnn/layers/dropout.py"],
    "SoftmaxCrossEntropy": ["tinycnn/losses.py"],
    "MSE": ["tinycnn/losses.py"],
    "BinaryCrossEntropyWithLogits": ["tinycnn/losses.py"],
    "SGD": ["tinycnn/optim.py"],
    "Adam": ["tinycnn/optim.py"],
    "He initialisation": ["tinycnn/init.py"],
    "Xavier initialisation": ["tinycnn/init.py"],
    "Learning-rate schedules": ["tinycnn/optim.py"],
    "BatchNorm2D": ["tinycnn/kernels/batchnorm.py", "tinycnn/layers/normalization.py"],
    "GlobalAvgPool2D": ["tinycnn/layers/pooling.py"],
    "Residual": ["tinycnn/layers/residual.py"],
}
# words each section's heading or body must mention (the parts of an item named in the issue)
MUST_MENTION = {
    "Conv2D": ["stride", "padding"],
    "SoftmaxCrossEntropy": ["class weights"],
    "SGD": ["momentum", "Nesterov", "weight decay"],
    "Learning-rate schedules": ["StepLR", "CosineLR"],
    "BatchNorm2D": ["running_mean", "running_var", "unbiased", "evaluation"],
    "Residual": ["identity"],
}


def _sections(text):
    """{heading: body} for every '## ' heading."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[k].strip(): parts[k + 1] for k in range(1, len(parts), 2)}


def _quotes(text):
    """[(line number, path, qualname, [quoted lines])] for every marker in ``text``."""
    lines = text.splitlines()
    found = []
    k = 0
    while k < len(lines):
        m = MARKER.match(lines[k].strip())
        if not m:
            k += 1
            continue
        start = k
        k += 1
        while k < len(lines) and not lines[k].strip():
            k += 1
        if k >= len(lines) or lines[k].strip() != "```python":
            found.append((start + 1, m["path"], m["qual"], None))
            continue
        k += 1
        quoted = []
        while k < len(lines) and lines[k].strip() != "```":
            if lines[k].strip():
                quoted.append(lines[k].strip())
            k += 1
        found.append((start + 1, m["path"], m["qual"], quoted))
        k += 1
    return found


@lru_cache(maxsize=None)
def _definitions(path):
    """{qualname: source lines (stripped)} for every function and class in ``path``."""
    source = (ROOT / path).read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    defs = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = prefix + child.name
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                defs[qual] = [ln.strip() for ln in lines[first - 1:child.end_lineno]]
                visit(child, qual + ".")

    visit(tree, "")
    return defs


TEXT = MAP.read_text() if MAP.is_file() else ""
QUOTES = _quotes(TEXT)


def test_map_exists_and_quotes_code():
    assert MAP.is_file(), f"missing {MAP}"
    assert len(QUOTES) >= 40, f"expected the map to quote code in many places, found {len(QUOTES)}"


@pytest.mark.parametrize("line, path, qual, quoted", QUOTES,
                         ids=[f"L{q[0]}:{q[1].split('/')[-1]}::{q[2]}" for q in QUOTES])
def test_quoted_lines_are_in_the_function(line, path, qual, quoted):
    where = f"docs/math_to_code.md line {line}: `{path}::{qual}`"
    assert quoted, f"{where} is not followed by a ```python block with the quoted code"
    assert (ROOT / path).is_file(), f"{where}: no such file"
    defs = _definitions(path)
    assert qual in defs, (f"{where}: no function or class {qual!r} in {path} "
                          f"(it has: {', '.join(sorted(defs))})")
    source = defs[qual]
    missing = [q for q in quoted if q not in source]
    assert not missing, (f"{where}: these quoted lines are no longer in {qual}'s source "
                         f"(update the map):\n" + "\n".join(f"    {q}" for q in missing))


# links in prose only: an example inside a `code span` is not a link
LINKS = [(m["text"], m["target"]) for m in LINK.finditer(re.sub(r"`[^`\n]*`", "", TEXT))]


@pytest.mark.parametrize("text, target", LINKS, ids=[f"{t}->{p}" for t, p in LINKS])
def test_links_point_at_existing_functions(text, target):
    path = (MAP.parent / target).resolve()
    assert path.is_file(), f"docs/math_to_code.md: link [{text}]({target}): no such file"
    qual = text.split(".", 1)[1] if "." in text else text
    rel = path.relative_to(ROOT).as_posix()
    assert qual in _definitions(rel), f"docs/math_to_code.md: link [{text}]({target}): no {qual!r} in {rel}"


@pytest.mark.parametrize("item", sorted(REQUIRED))
def test_every_item_has_a_section(item):
    sections = _sections(TEXT)
    matches = [h for h in sections if item in h]
    assert matches, f"docs/math_to_code.md has no '## ' section for {item!r}"
    body = "\n".join(f"{h}\n{sections[h]}" for h in matches)
    quoted_files = {path for _, path, _, _ in _quotes(body)}
    for need in REQUIRED[item]:
        wanted = FAST_MODULES if need == "fast" else (need,)
        assert quoted_files & set(wanted), (
            f"section {matches[0]!r} quotes no code from {' or '.join(wanted)}")
    for word in MUST_MENTION.get(item, []):
        assert word.lower() in body.lower(), f"section {matches[0]!r} does not mention {word!r}"
    assert "partial" in body or "\\partial" in body or "backward" in body.lower() or item in (
        "He initialisation", "Xavier initialisation", "Learning-rate schedules", "SGD", "Adam"), (
        f"section {matches[0]!r} gives no backward equation")


def test_parser_catches_a_stale_quote(tmp_path):
    """The checker itself: a made-up line or function must be reported."""
    fake = ("`tinycnn/kernels/reference.py::dense_forward`\n```python\nreturn x @ w + b\n```\n"
            "`tinycnn/kernels/reference.py::no_such_function`\n```python\npass\n```\n")
    (line1, path1, qual1, quoted1), (_, _, qual2, _) = _quotes(fake)
    assert quoted1 == ["return x @ w + b"]
    assert "return x @ w + b" not in _definitions(path1)[qual1]
    assert qual2 not in _definitions(path1)


def _math(text):
    """Every $...$ / $$...$$ segment of the prose (code fences and `code spans` removed)."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return [a or b for a, b in re.findall(r"\$\$(.*?)\$\$|\$(.*?)\$", prose, flags=re.S)]


# one meaning per symbol: w is a weight, never an index; W is a width, never a weight matrix
W_AS_INDEX = re.compile(r"_\{[^{}]*(?<![A-Za-z\\])w(?![A-Za-z])[^{}]*\}")
W_AS_MATRIX = re.compile(r"(?<![A-Za-z\\])d?W(\^T|\s*x\b|_\{\()|dY\\?,?\s*W\b")


def _symbol_misuses(text):
    """Math segments where ``w`` is used as an index or ``W`` as a weight matrix."""
    return [m for m in _math(text) if W_AS_INDEX.search(m) or W_AS_MATRIX.search(m)]


def test_notation_table_comes_first_and_w_has_one_meaning():
    headings = list(_sections(TEXT))
    assert headings and headings[0].startswith("Notation"), (
        f"the first '## ' section of the map must be the notation table, got {headings[:1]}")
    table = _sections(TEXT)[headings[0]]
    for symbol in ("$h, q$", "$h', q'$", "$w, b$", "$\\omega_k$; $\\omega_+$"):
        assert symbol in table, f"the notation table does not define {symbol}"
    bad = _symbol_misuses(TEXT)
    assert not bad, "w used as an index or W as a weight matrix in: " + " | ".join(bad[:5])


def test_symbol_checker_catches_the_old_notation():
    """The checker itself: the notations this map used to have are reported."""
    old = ("$y_{n,f,h,w} = b_f$ and $Y = X W^T + b$ and $\\ell_k = w\\,t_k$ "
           "and $(dX = dY\\,W)$ and $y_{n,(c H + h) W + w}$")
    assert len(_symbol_misuses(old)) == 4
    assert not _symbol_misuses("$y_{n,f,h,q} = b_f + w_{f,c,i,j}$ and $Y = X w^T + b$ and $W_o$")
