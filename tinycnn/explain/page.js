"use strict";
// tinycnn explainer page. Reads the numbers tinycnn embedded in this file, draws every
// layer's output, and on a click shows how one unit was computed -- recomputing it here,
// in the browser, from the layer's input and parameters, and comparing with tinycnn.
// Plain JavaScript and <canvas>; no libraries, no network.
(function () {
  const DATA = JSON.parse(document.getElementById("tinycnn-data").textContent);

  // ------------------------------------------------------------------ arrays
  // An array is {shape, data: Float32Array} in row-major (C) order, as NumPy stores it.
  function decode(entry) {
    const bin = atob(entry.b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return { shape: entry.shape, data: new Float32Array(bytes.buffer) };
  }
  function at(t, idx) {                       // t[idx[0], idx[1], ...]
    let flat = 0;
    for (let d = 0; d < t.shape.length; d++) flat = flat * t.shape[d] + idx[d];
    return t.data[flat];
  }
  const size = (shape) => shape.reduce((a, b) => a * b, 1);
  const fmt = (v) => (v === null ? "pad" : Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)
    ? v.toExponential(2) : v.toFixed(4));
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const input = decode(DATA.input.model);
  const raw = decode(DATA.input.raw);
  const layers = DATA.layers.map((L) => {
    const params = {};
    for (const name in L.params) params[name] = decode(L.params[name]);
    const br = {};
    for (const name in L.branches || {}) br[name] = decode(L.branches[name]);
    if (L.kind === "residual" && !br.shortcut) br.shortcut = { shape: [] };
    return Object.assign({}, L, { out: decode(L.output), p: params, br });
  });
  const inputOf = (k) => (k === 0 ? input : layers[k - 1].out);

  // ------------------------------------------------------------------ the math, per kind
  // Each returns {value, parts}: the recomputed output unit and what the panel shows.
  const ACT = {
    relu: (x) => Math.max(0, x),
    leaky_relu: (x, L) => (x > 0 ? x : L.alpha * x),
    sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
    tanh: (x) => Math.tanh(x),
  };

  function windowOf(L, x, c, h, w, pad) {     // K_H×K_W values of x[c] (null: padding cell)
    const [KH, KW] = L.kernel, [sh, sw] = L.stride, [ph, pw] = pad;
    const [, H, W] = x.shape, rows = [];
    for (let i = 0; i < KH; i++) {
      const row = [];
      for (let j = 0; j < KW; j++) {
        const r = h * sh + i - ph, q = w * sw + j - pw;
        row.push(r < 0 || r >= H || q < 0 || q >= W ? null : at(x, [c, r, q]));
      }
      rows.push(row);
    }
    return rows;
  }

  const KINDS = {
    conv(L, x, [f, h, w]) {
      const [F, C, KH, KW] = L.p.weight.shape;
      const channels = [];
      let total = 0;
      for (let c = 0; c < C; c++) {
        const win = windowOf(L, x, c, h, w, L.padding);
        const kern = [];
        let partial = 0;
        for (let i = 0; i < KH; i++) {
          const row = [];
          for (let j = 0; j < KW; j++) {
            const k = at(L.p.weight, [f, c, i, j]);
            row.push(k);
            partial += (win[i][j] === null ? 0 : win[i][j]) * k;
          }
          kern.push(row);
        }
        channels.push({ c, win, kern, partial });
        total += partial;
      }
      const bias = L.p.bias ? L.p.bias.data[f] : 0;
      return { value: total + bias, parts: { channels, total, bias, hasBias: !!L.p.bias } };
    },
    maxpool(L, x, [c, h, w]) {
      const win = windowOf(L, x, c, h, w, [0, 0]);
      // the first largest value in row-major order wins, as in tinycnn's kernels; a NaN wins
      // over any number (the first NaN), as in PyTorch
      let best = -Infinity, bi = 0, bj = 0, nan = false;
      win.forEach((row, i) => row.forEach((v, j) => {
        if (nan) return;
        if (Number.isNaN(v) || v > best) { best = v; bi = i; bj = j; nan = Number.isNaN(v); }
      }));
      return { value: best, parts: { win, winner: [bi, bj] } };
    },
    avgpool(L, x, [c, h, w]) {
      const win = windowOf(L, x, c, h, w, [0, 0]);
      let s = 0;
      win.forEach((row) => row.forEach((v) => { s += v; }));
      return { value: s / (L.kernel[0] * L.kernel[1]), parts: { win, sum: s } };
    },
    act(L, x, idx) {
      const v = at(x, idx);
      return { value: ACT[L.fn](v, L), parts: { x: v } };
    },
    identity(L, x, idx) {
      const v = at(x, idx);
      return { value: v, parts: { x: v } };
    },
    flatten(L, x, [i]) {
      const [C, H, W] = x.shape.length === 3 ? x.shape : [x.shape[0], 1, 1];
      const c = Math.floor(i / (H * W)), h = Math.floor((i % (H * W)) / W), w = i % W;
      return { value: x.data[i], parts: { c, h, w, dims: [C, H, W] } };
    },
    gap(L, x, [c]) {
      const [, H, W] = x.shape;
      let s = 0;
      for (let i = 0; i < H * W; i++) s += x.data[c * H * W + i];
      return { value: s / (H * W), parts: { sum: s, n: H * W } };
    },
    batchnorm(L, x, idx) {
      const c = idx[0], v = at(x, idx);
      const mean = L.p.running_mean.data[c], variance = L.p.running_var.data[c];
      const gamma = L.p.weight.data[c], beta = L.p.bias.data[c];
      const xhat = (v - mean) / Math.sqrt(variance + L.eps);
      return { value: gamma * xhat + beta, parts: { x: v, mean, variance, gamma, beta, xhat } };
    },
    residual(L, x, idx) {
      const f = at(L.br.layers, idx), s = L.br.shortcut.shape.length ? at(L.br.shortcut, idx) : at(x, idx);
      return { value: f + s, parts: { f, s } };
    },
    dense(L, x, [o]) {
      const I = L.p.weight.shape[1];
      const products = [];
      let total = 0;
      for (let i = 0; i < I; i++) {
        const prod = L.p.weight.data[o * I + i] * x.data[i];
        products.push({ i, w: L.p.weight.data[o * I + i], x: x.data[i], prod });
        total += prod;
      }
      const bias = L.p.bias ? L.p.bias.data[o] : 0;
      return { value: total + bias, parts: { products, total, bias } };
    },
  };

  function recompute(k, idx) {
    const L = layers[k];
    return KINDS[L.kind](L, inputOf(k), idx);
  }

  function unravel(shape, flat) {
    const idx = new Array(shape.length);
    for (let d = shape.length - 1; d >= 0; d--) { idx[d] = flat % shape[d]; flat = Math.floor(flat / shape[d]); }
    return idx;
  }

  function probabilities() {                  // softmax (or sigmoid) of the last layer, here
    const z = Array.from(layers[layers.length - 1].out.data);
    if (DATA.output_kind === "sigmoid") return [ACT.sigmoid(z[0])];
    const m = Math.max(...z), e = z.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  }

  // Every unit of every layer, recomputed from its input and compared with tinycnn.
  function selfCheck() {
    let units = 0, worst = 0, where = null;
    layers.forEach((L, k) => {
      const n = size(L.out.shape);
      for (let flat = 0; flat < n; flat++) {
        const idx = unravel(L.out.shape, flat);
        const mine = recompute(k, idx).value, theirs = L.out.data[flat];
        const err = Math.abs(mine - theirs) / Math.max(1, Math.abs(theirs));
        if (!(err <= worst)) { worst = err; where = { layer: k, index: idx, page: mine, tinycnn: theirs }; }
        units++;
      }
    });
    probabilities().forEach((p, i) => {
      const err = Math.abs(p - DATA.probabilities[i]);
      if (!(err <= worst)) { worst = err; where = { layer: "probabilities", index: [i] }; }
      units++;
    });
    return { units, maxRelError: worst, worst: where, passed: worst <= 1e-5 };
  }

  // ------------------------------------------------------------------ colours
  // Signed maps: blue for negative, white for 0, red for positive, |v| up to the scale.
  function diverging(v, m) {
    const t = m > 0 ? Math.max(-1, Math.min(1, v / m)) : 0;
    const a = Math.round(255 * (1 - Math.abs(t)));
    return t >= 0 ? [255, a, a] : [a, a, 255];
  }
  function gray(v, lo, hi) {
    const g = Math.round(255 * (hi > lo ? (v - lo) / (hi - lo) : 0));
    return [g, g, g];
  }
  function heat(v) {                          // 0..1: black, red, yellow, white
    const t = Math.max(0, Math.min(1, v));
    return [Math.round(255 * Math.min(1, 3 * t)), Math.round(255 * Math.max(0, Math.min(1, 3 * t - 1))),
      Math.round(255 * Math.max(0, 3 * t - 2))];
  }
  const maxAbs = (arr, from, to) => { let m = 0; for (let i = from; i < to; i++) m = Math.max(m, Math.abs(arr[i])); return m; };
  let globalMax = 0;
  layers.forEach((L) => { globalMax = Math.max(globalMax, maxAbs(L.out.data, 0, L.out.data.length)); });

  function scaleFor(L, c) {
    const mode = document.getElementById("scale").value;
    if (mode === "global") return globalMax;
    if (mode === "channel" && L.out.shape.length === 3) {
      const n = L.out.shape[1] * L.out.shape[2];
      return maxAbs(L.out.data, c * n, (c + 1) * n);
    }
    return maxAbs(L.out.data, 0, L.out.data.length);
  }

  // A map of H×W cells, each `cell` pixels: colour(value) for every cell.
  function paint(canvas, H, W, value, colour, cell, cellH = cell) {
    canvas.width = W * cell; canvas.height = H * cellH;
    const ctx = canvas.getContext("2d");
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++) {
        const [r, g, b] = colour(value(h, w));
        ctx.fillStyle = `rgb(${r},${g},${b})`;
        ctx.fillRect(w * cell, h * cellH, cell, cellH);
      }
    }
  }
  const cellFor = (H, W) => Math.max(2, Math.floor(84 / Math.max(H, W)));

  // ------------------------------------------------------------------ overview
  function mapCanvas(label, H, W, value, colour) {
    const box = el("figure", "map");
    const canvas = el("canvas");
    paint(canvas, H, W, value, colour, cellFor(H, W));
    box.appendChild(canvas);
    box.appendChild(el("figcaption", null, label));
    return box;
  }

  const inputCanvases = [];                   // the normalised input's maps: layer 0's window lands here

  function drawOverview() {
    const o = document.getElementById("overview");
    o.textContent = "";
    inputCanvases.length = 0;
    const [C, H, W] = input.shape;
    const inBox = el("div", "card");
    inBox.appendChild(el("h2", null, `Input (${C}×${H}×${W})`));
    const maps = el("div", "maps");
    for (let c = 0; c < C; c++) {
      const rs = raw.data.subarray(c * H * W, (c + 1) * H * W);
      const lo = Math.min(...rs), hi = Math.max(...rs);
      maps.appendChild(mapCanvas(`raw, channel ${c}`, H, W, (h, w) => at(raw, [c, h, w]), (v) => gray(v, lo, hi)));
      const m = maxAbs(input.data, c * H * W, (c + 1) * H * W);
      const box = mapCanvas(`normalised, channel ${c} (±${fmt(m)})`, H, W, (h, w) => at(input, [c, h, w]), (v) => diverging(v, m));
      inputCanvases.push({ canvas: box.querySelector("canvas"), cell: cellFor(H, W), H, W, m });
      maps.appendChild(box);
    }
    inBox.appendChild(maps);
    o.appendChild(inBox);

    const pred = el("div", "card");
    const names = DATA.class_names;
    pred.appendChild(el("h2", null, `Prediction: ${names[DATA.predicted] ?? DATA.predicted}`));
    DATA.probabilities.forEach((p, i) => {
      const row = el("div", "bar-row");
      row.appendChild(el("span", "bar-label", names[i] ?? String(i)));
      const bar = el("span", "bar");
      const fill = el("span", i === DATA.predicted ? "fill best" : "fill");
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      bar.appendChild(fill);
      row.appendChild(bar);
      row.appendChild(el("span", "bar-value", p.toFixed(4)));
      row.addEventListener("click", () => select(layers.length, [i]));
      pred.appendChild(row);
    });
    o.appendChild(pred);

    const why = el("div", "card");
    why.appendChild(el("h2", null, "Where the model looked"));
    const wm = el("div", "maps");
    const sal = decode(DATA.saliency), smax = Math.max(...sal.data);
    wm.appendChild(mapCanvas("saliency |∂score/∂x|", sal.shape[0], sal.shape[1], (h, w) => at(sal, [h, w]), (v) => heat(smax > 0 ? v / smax : 0)));
    if (DATA.cam) {
      const cam = decode(DATA.cam);
      wm.appendChild(mapCanvas("Grad-CAM (last conv block)", cam.shape[0], cam.shape[1], (h, w) => at(cam, [h, w]), heat));
    }
    why.appendChild(wm);
    o.appendChild(why);
  }

  // ------------------------------------------------------------------ layer rows
  const canvases = [];                        // canvases[k][c] = {canvas, cell}; k = -1: input

  function drawLayers() {
    const root = document.getElementById("layers");
    root.textContent = "";
    canvases.length = 0;
    canvases.input = [];
    layers.forEach((L, k) => {
      const row = el("section", "layer");
      row.id = `layer-${k}`;
      const head = el("div", "layer-head");
      head.appendChild(el("span", "layer-name", `${k}: ${L.repr}`));
      head.appendChild(el("span", "layer-shape", `output (${L.out.shape.join(", ")})`));
      if (L.formula) head.appendChild(el("span", "layer-formula", `params ${L.formula}`));
      head.appendChild(el("span", "layer-eq", L.equation));
      row.appendChild(head);
      if (L.kind === "conv") row.appendChild(filters(L));
      const maps = el("div", "maps");
      canvases[k] = [];
      if (L.out.shape.length === 3) {
        const [C, H, W] = L.out.shape;
        for (let c = 0; c < C; c++) {
          const m = scaleFor(L, c);
          const box = mapCanvas(`ch ${c} (±${fmt(m)})`, H, W, (h, w) => at(L.out, [c, h, w]), (v) => diverging(v, m));
          const canvas = box.querySelector("canvas");
          canvas.dataset.layer = k; canvas.dataset.channel = c;
          canvas.addEventListener("click", (ev) => {
            const r = canvas.getBoundingClientRect();
            select(k, [c, Math.floor((ev.clientY - r.top) / r.height * H), Math.floor((ev.clientX - r.left) / r.width * W)]);
          });
          canvases[k].push({ canvas, cell: cellFor(H, W), H, W, m });
          maps.appendChild(box);
        }
      } else {
        const n = L.out.shape[0], m = scaleFor(L, 0);
        const cell = Math.max(3, Math.min(24, Math.floor(600 / n)));
        const box = el("figure", "map strip");
        const canvas = el("canvas");
        paint(canvas, 1, n, (h, w) => L.out.data[w], (v) => diverging(v, m), cell, 24);
        canvas.addEventListener("click", (ev) => {
          const r = canvas.getBoundingClientRect();
          select(k, [Math.floor((ev.clientX - r.left) / r.width * n)]);
        });
        box.appendChild(canvas);
        box.appendChild(el("figcaption", null, `${n} units (±${fmt(m)})`));
        canvases[k].push({ canvas, cell, H: 1, W: n, m, strip: true });
        maps.appendChild(box);
      }
      row.appendChild(maps);
      root.appendChild(row);
    });
    drawLegend();
  }

  function filters(L) {
    const [F, C, KH, KW] = L.p.weight.shape;
    const d = el("details", "filters");
    d.open = true;
    const m = maxAbs(L.p.weight.data, 0, L.p.weight.data.length);
    d.appendChild(el("summary", null, `filters: ${F} × ${C} kernels of ${KH}×${KW} (±${fmt(m)})`));
    const grid = el("div", "filter-grid");
    for (let f = 0; f < F; f++) {
      const row = el("div", "filter-row");
      row.appendChild(el("span", "filter-label", `f${f}`));
      for (let c = 0; c < C; c++) {
        const cv = el("canvas");
        cv.title = `filter ${f}, input channel ${c}`;
        paint(cv, KH, KW, (i, j) => at(L.p.weight, [f, c, i, j]), (v) => diverging(v, m), 6);
        row.appendChild(cv);
      }
      grid.appendChild(row);
    }
    d.appendChild(grid);
    return d;
  }

  function drawLegend() {
    const legend = document.getElementById("legend");
    legend.textContent = "";
    const cv = el("canvas");
    paint(cv, 1, 101, (h, w) => (w - 50) / 50, (v) => diverging(v, 1), 2);
    legend.appendChild(el("span", null, "−max"));
    legend.appendChild(cv);
    legend.appendChild(el("span", null, "+max   (blue negative, white 0, red positive; each map's ±max is in its caption)"));
  }

  // ------------------------------------------------------------------ selection and panel
  let selected = null;

  function outline(entry, r0, c0, r1, c1, colour) {
    const ctx = entry.canvas.getContext("2d");
    const s = entry.cell, sh = entry.strip ? entry.canvas.height : s;
    const y0 = Math.max(0, r0), x0 = Math.max(0, c0), y1 = Math.min(entry.H - 1, r1), x1 = Math.min(entry.W - 1, c1);
    if (y1 < y0 || x1 < x0) return;
    ctx.strokeStyle = colour; ctx.lineWidth = 2;
    ctx.strokeRect(x0 * s + 1, y0 * sh + 1, (x1 - x0 + 1) * s - 2, (y1 - y0 + 1) * sh - 2);
  }

  function select(k, idx) {
    selected = { k, idx };
    drawOverview();
    drawLayers();
    const body = document.getElementById("detail-body");
    body.textContent = "";
    if (k === layers.length) body.appendChild(softmaxPanel(idx[0]));
    else {
      const L = layers[k];
      if (L.out.shape.length === 3) {
        const entry = canvases[k][idx[0]];
        outline(entry, idx[1], idx[2], idx[1], idx[2], "#000");
        const prev = k === 0 ? inputCanvases : canvases[k - 1];
        if ((L.kind === "conv" || L.kind === "maxpool" || L.kind === "avgpool") && prev[0] && !prev[0].strip) {
          const pad = L.padding || [0, 0];
          const r0 = idx[1] * L.stride[0] - pad[0], c0 = idx[2] * L.stride[1] - pad[1];
          const chans = L.kind === "conv" ? prev.map((_, c) => c) : [idx[0]];
          chans.forEach((c) => prev[c] && outline(prev[c], r0, c0, r0 + L.kernel[0] - 1, c0 + L.kernel[1] - 1, "#0a0"));
        }
      } else {
        const entry = canvases[k][0];
        outline(entry, 0, idx[0], 0, idx[0], "#000");
      }
      body.appendChild(panel(k, idx));
    }
    document.getElementById("detail").hidden = false;
  }

  function grid(rows, mark) {                 // a small table of numbers; mark(i, j) -> class
    const t = el("table", "grid");
    rows.forEach((row, i) => {
      const tr = el("tr");
      row.forEach((v, j) => tr.appendChild(el("td", (v === null ? "pad " : "") + (mark ? mark(i, j) : ""), fmt(v))));
      t.appendChild(tr);
    });
    return t;
  }

  function verdict(mine, theirs) {
    const ok = Math.abs(mine - theirs) <= 1e-5 * Math.max(1, Math.abs(theirs));
    const p = el("p", ok ? "verdict ok" : "verdict bad",
      `tinycnn computed ${theirs.toPrecision(7)}; this page recomputes ${mine.toPrecision(7)} ${ok ? "✓" : "✗"}`);
    p.dataset.tinycnn = String(theirs); p.dataset.page = String(mine);
    return p;
  }

  function panel(k, idx) {
    const L = layers[k];
    const r = recompute(k, idx);
    const theirs = at(L.out, idx);
    const box = el("div", "panel");
    box.dataset.kind = L.kind;
    box.appendChild(el("h3", null, `${k}: ${L.repr} — unit (${idx.join(", ")})`));
    const P = r.parts;
    if (L.kind === "conv") {
      const r0 = idx[1] * L.stride[0] - L.padding[0], c0 = idx[2] * L.stride[1] - L.padding[1];
      box.appendChild(el("p", null, `Rows ${r0}…${r0 + L.kernel[0] - 1} and columns ${c0}…${c0 + L.kernel[1] - 1} ` +
        `(h·s − p = ${idx[1]}·${L.stride[0]} − ${L.padding[0]}, w·s − p = ${idx[2]}·${L.stride[1]} − ${L.padding[1]}) ` +
        `of the ${k === 0 ? "input" : "previous layer's output"}, outlined in green there; grey cells are zero ` +
        `padding. Each input channel's window times filter ${idx[0]}'s kernel for that channel, summed:`));
      P.channels.forEach((ch) => {
        const row = el("div", "conv-channel");
        row.appendChild(el("span", "label", `c${ch.c}`));
        row.appendChild(grid(ch.win));
        row.appendChild(el("span", "op", "⊙"));
        row.appendChild(grid(ch.kern));
        row.appendChild(el("span", "op", `= ${fmt(ch.partial)}`));
        box.appendChild(row);
      });
      box.appendChild(el("p", "sum", `Σ over channels ${P.channels.map((c) => fmt(c.partial)).join(" + ")} = ${fmt(P.total)}` +
        (P.hasBias ? `; + bias ${fmt(P.bias)} = ${fmt(r.value)}` : ` (no bias) = ${fmt(r.value)}`)));
    } else if (L.kind === "maxpool") {
      const [wi, wj] = P.winner;
      box.appendChild(el("p", null, `Window ${L.kernel.join("×")} at stride ${L.stride.join("×")} of channel ${idx[0]}; the largest value (marked) wins:`));
      box.appendChild(grid(P.win, (i, j) => (i === wi && j === wj ? "win" : "")));
      box.appendChild(el("p", "sum", `max = ${fmt(r.value)}`));
    } else if (L.kind === "avgpool") {
      box.appendChild(el("p", null, `Window ${L.kernel.join("×")} at stride ${L.stride.join("×")} of channel ${idx[0]}:`));
      box.appendChild(grid(P.win));
      box.appendChild(el("p", "sum", `sum ${fmt(P.sum)} / ${L.kernel[0] * L.kernel[1]} = ${fmt(r.value)}`));
    } else if (L.kind === "act") {
      box.appendChild(el("p", "sum", `f(x) = ${L.equation}: f(${fmt(P.x)}) = ${fmt(r.value)}`));
    } else if (L.kind === "identity") {
      box.appendChild(el("p", "sum", `Dropout (p = ${L.p}) is off in eval mode: y = x = ${fmt(P.x)}`));
    } else if (L.kind === "flatten") {
      const [C, H, W] = P.dims;
      box.appendChild(el("p", "sum", `index ${idx[0]} = ${P.c}·${H}·${W} + ${P.h}·${W} + ${P.w}: the value of channel ${P.c}, row ${P.h}, column ${P.w} = ${fmt(r.value)}`));
    } else if (L.kind === "gap") {
      box.appendChild(el("p", "sum", `mean of channel ${idx[0]}'s ${P.n} values: ${fmt(P.sum)} / ${P.n} = ${fmt(r.value)}`));
    } else if (L.kind === "batchnorm") {
      box.appendChild(el("p", "sum", `γ·(x − running_mean)/√(running_var + ε) + β = ${fmt(P.gamma)}·(${fmt(P.x)} − ${fmt(P.mean)})` +
        `/√(${fmt(P.variance)} + ${L.eps}) + ${fmt(P.beta)} = ${fmt(P.gamma)}·${fmt(P.xhat)} + ${fmt(P.beta)} = ${fmt(r.value)}`));
      box.appendChild(el("p", null, "Evaluation mode: the statistics are the running ones learned in training, not this batch's."));
    } else if (L.kind === "residual") {
      box.appendChild(el("p", null, `Residual branch F: ${L.branch.join(" → ")}`));
      box.appendChild(el("p", null, `Shortcut S: ${L.shortcut.length ? L.shortcut.join(" → ") : "identity (S(x) = x)"}`));
      box.appendChild(el("p", "sum", `F(x) + S(x) = ${fmt(P.f)} + ${fmt(P.s)} = ${fmt(r.value)}`));
    } else if (L.kind === "dense") {
      const top = P.products.slice().sort((a, b) => Math.abs(b.prod) - Math.abs(a.prod));
      box.appendChild(el("p", null, `The ${Math.min(8, top.length)} largest of ${top.length} products W[${idx[0]}, i] · x[i]:`));
      const list = el("table", "grid products");
      const show = (items) => {
        list.textContent = "";
        items.forEach((t) => list.appendChild(rowOf([`i=${t.i}`, `${fmt(t.w)} · ${fmt(t.x)}`, `= ${fmt(t.prod)}`])));
      };
      show(top.slice(0, 8));
      box.appendChild(list);
      if (top.length > 8) {
        const all = el("button", "more", `show all ${top.length} products`);
        all.type = "button";
        all.addEventListener("click", () => { show(P.products); all.remove(); });
        box.appendChild(all);
      }
      box.appendChild(el("p", "sum", `Σ products ${fmt(P.total)} + bias ${fmt(P.bias)} = ${fmt(r.value)}`));
    }
    box.appendChild(verdict(r.value, theirs));
    box.appendChild(el("p", "eq", `Equation: ${L.equation}`));
    box.appendChild(el("p", "code", `Code: ${L.code}`));
    return box;
  }

  function rowOf(cells) {
    const tr = el("tr");
    cells.forEach((c) => tr.appendChild(el("td", null, c)));
    return tr;
  }

  function softmaxPanel(i) {
    const z = Array.from(layers[layers.length - 1].out.data);
    const mine = probabilities()[i], theirs = DATA.probabilities[i];
    const box = el("div", "panel");
    box.dataset.kind = DATA.output_kind;
    const name = DATA.class_names[i] ?? String(i);
    box.appendChild(el("h3", null, `${DATA.output_kind} — class ${name}`));
    if (DATA.output_kind === "sigmoid") {
      box.appendChild(el("p", "sum", `p = 1 / (1 + e^(−z)) with z = ${fmt(z[0])}: p = ${fmt(mine)} (threshold ${DATA.threshold})`));
    } else {
      const m = Math.max(...z);
      box.appendChild(el("p", "sum", `p[${i}] = e^(z[${i}] − max z) / Σ_j e^(z[j] − max z) = e^(${fmt(z[i])} − ${fmt(m)}) / ` +
        `(${z.map((v) => `e^(${fmt(v - m)})`).join(" + ")}) = ${fmt(mine)}`));
    }
    box.appendChild(verdict(mine, theirs));
    box.appendChild(el("p", "code", "Code: tinycnn/train.py::predict"));
    return box;
  }

  document.addEventListener("keydown", (ev) => {
    if (!selected || selected.k === layers.length) return;
    const L = layers[selected.k], idx = selected.idx.slice();
    const move = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[ev.key];
    if (!move) return;
    ev.preventDefault();
    if (L.out.shape.length === 3) {
      idx[1] = Math.max(0, Math.min(L.out.shape[1] - 1, idx[1] + move[0]));
      idx[2] = Math.max(0, Math.min(L.out.shape[2] - 1, idx[2] + move[1]));
    } else {
      idx[0] = Math.max(0, Math.min(L.out.shape[0] - 1, idx[0] + move[1] + move[0]));
    }
    select(selected.k, idx);
  });
  document.getElementById("close").addEventListener("click", () => { document.getElementById("detail").hidden = true; });
  document.getElementById("scale").addEventListener("change", () => (selected ? select(selected.k, selected.idx) : drawLayers()));

  // ------------------------------------------------------------------ start
  document.getElementById("summary").textContent = DATA.summary;
  drawOverview();
  drawLayers();
  const check = selfCheck();
  document.getElementById("selfcheck").textContent = check.passed
    ? `Self-check: this page recomputed all ${check.units} units from each layer's input and parameters; ` +
      `they agree with tinycnn (largest relative difference ${check.maxRelError.toExponential(1)}).`
    : `Self-check FAILED: largest relative difference ${check.maxRelError.toExponential(2)} at ${JSON.stringify(check.worst)}`;
  document.getElementById("selfcheck").className = check.passed ? "selfcheck ok" : "selfcheck bad";
  window.tinycnnExplain = { selfCheck, select, recompute, layers, data: DATA, valueAt: (k, idx) => at(layers[k].out, idx) };
})();
