// The lab's page: it only draws. Every number comes from the server (tinygrad_edu), as JSON from POST /api/...
"use strict";

const $ = (id) => document.getElementById(id);
const lab = { image: null, label: null, hidden: 10, busy: false, pending: false, history: [],
              polling: null, pollBusy: false, trainState: "idle" };

// --- talking to the server ------------------------------------------------------------------------------

async function post(path, body = {}) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                       body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(data.error || `${response.status}`);
  return data;
}

function say(text, ok = false) {
  const s = $("status");
  s.textContent = text;
  s.className = ok ? "ok" : "";
}

async function guarded(action) {
  try { await action(); } catch (e) { say(e.message); }
}

// --- pictures and numbers ---------------------------------------------------------------------------------

const fmt = (x, digits = 4) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3)) ?
  x.toExponential(2) : x.toFixed(digits);

// A 28×28 picture: an image in [0, 1] as dark ink on white; signed weights red (+) and blue (−), by max |v|.
function picture(canvas, values, signed) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(28, 28);
  const scale = signed ? Math.max(1e-12, ...values.map(Math.abs)) : 1;
  values.forEach((v, i) => {
    let r, g, b;
    if (signed) {
      const t = Math.min(1, Math.abs(v) / scale);
      [r, g, b] = v >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 - t), 255 * (1 - t), 255];
    } else {
      r = g = b = 255 * (1 - v);
    }
    img.data.set([r, g, b, 255], 4 * i);
  });
  ctx.putImageData(img, 0, 0);
}

function pixelCanvas() {
  const c = document.createElement("canvas");
  c.width = c.height = 28;
  c.className = "pixels";
  return c;
}

function units(container, pictures, captions, off = []) {
  container.replaceChildren(...pictures.map((values, j) => {
    const div = document.createElement("div");
    div.className = "unit" + (off[j] ? " off" : "");
    const c = pixelCanvas();
    picture(c, values, true);
    const caption = document.createElement("div");
    caption.innerHTML = captions[j];
    div.append(c, caption);
    return div;
  }));
}

function bars(container, p, { truth = null } = {}) {
  const top = p.indexOf(Math.max(...p));
  container.replaceChildren();
  p.forEach((q, k) => {
    const label = document.createElement("span");
    label.textContent = k;
    const track = document.createElement("div");
    const bar = document.createElement("div");
    bar.className = "bar" + (k === top ? " top" : "") + (k === truth ? " truth" : "");
    bar.style.width = `${(100 * q).toFixed(2)}%`;
    track.append(bar);
    const value = document.createElement("span");
    value.className = "prob";
    value.dataset.p = q;
    value.textContent = q.toFixed(4);
    container.append(label, track, value);
  });
}

function column(table, values, { head = "k", name = "", mask = null } = {}) {
  const rows = values.map((v, k) => `<tr><th>${head}=${k}</th><td>${fmt(v)}</td>` +
    (mask ? `<td>${mask[k] ? "ReLU′ = 1" : "<span class=muted>masked</span>"}</td>` : "") + "</tr>");
  table.innerHTML = (name ? `<tr><th></th><th>${name}</th>${mask ? "<th>Z1 &gt; 0</th>" : ""}</tr>` : "") +
    rows.join("");
}

// NOTE: each cell's colour is set through the CSSOM (td.style), which the page's Content-Security-Policy allows;
// a style="..." attribute written as HTML is an inline style, which it blocks.
function heat(table, matrix) {
  const scale = Math.max(1e-12, ...matrix.flat().map(Math.abs));
  const cell = (tag, text) => { const c = document.createElement(tag); c.textContent = text; return c; };
  const head = document.createElement("tr");
  head.append(cell("th", ""), ...matrix[0].map((_, j) => cell("th", `j=${j}`)));
  table.replaceChildren(head, ...matrix.map((row, k) => {
    const tr = document.createElement("tr");
    tr.append(cell("th", `k=${k}`), ...row.map((v) => {
      const t = Math.min(1, Math.abs(v) / scale), c = Math.round(255 * (1 - 0.6 * t));
      const td = cell("td", fmt(v, 3));
      td.style.backgroundColor = v >= 0 ? `rgb(255, ${c}, ${c})` : `rgb(${c}, ${c}, 255)`;
      return td;
    }));
    return tr;
  }));
}

// --- the panels -----------------------------------------------------------------------------------------

function showForward(f) {
  lab.image = f.image;
  picture($("preview"), f.image, false);
  units($("hidden"), f.W1, f.Z1.map((z, j) => `j=${j}<br>Z1 ${fmt(z, 3)}<br>A1 ${fmt(f.A1[j], 3)}`),
        f.A1.map((a) => a <= 0));
  column($("z2"), f.Z2, { name: "Z2" });
  bars($("probs"), f.A2, { truth: lab.label });
  $("prediction").textContent = f.prediction;
  $("step").disabled = lab.label === null;
}

function showBackward(b) {
  $("backward").hidden = false;
  $("loss").textContent = fmt(b.loss);
  for (const name of ["Z2", "b2", "W2", "A1", "Z1", "W1"]) $(`rule-${name}`).textContent = b.rules[name];
  column($("dZ2"), b.dZ2, { name: "dZ2" });
  column($("db2"), b.db2, { name: "db2" });
  heat($("dW2"), b.dW2);
  column($("dZ1"), b.dZ1, { head: "j", name: "dZ1", mask: b.mask });
  units($("dW1"), b.dW1, b.dZ1.map((d, j) => `j=${j}<br>dZ1 ${fmt(d, 3)}`), b.mask.map((m) => !m));
  $("trace").textContent = b.trace.join("\n");
}

async function refresh() {
  if (!lab.image) return;
  const body = { image: lab.image };
  if (lab.label !== null) body.label = lab.label;
  showForward(await post("/api/forward", body));
  if (lab.label !== null) showBackward(await post("/api/backward", { image: lab.image, label: lab.label }));
}

function chooseLabel(d) {
  lab.label = d;
  document.querySelectorAll("#labels button").forEach((b) => b.classList.toggle("chosen", +b.dataset.digit === d));
  guarded(refresh);
}

// --- drawing --------------------------------------------------------------------------------------------

const pad = $("draw"), pen = pad.getContext("2d", { willReadFrequently: true });
let drawing = false, last = null, drawn = false;

function strokeTo(e) {
  const r = pad.getBoundingClientRect();
  const p = { x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height };
  pen.lineWidth = 20;
  pen.lineCap = pen.lineJoin = "round";
  pen.strokeStyle = "#000";
  pen.beginPath();
  pen.moveTo(last ? last.x : p.x, last ? last.y : p.y);
  pen.lineTo(p.x, p.y + (last ? 0 : 0.01));
  pen.stroke();
  last = p;
  drawn = true;
}

async function sendDrawing() {
  if (lab.busy) { lab.pending = true; return; }
  lab.busy = true;
  try {
    const a = pen.getImageData(0, 0, pad.width, pad.height).data;
    const alpha = new Array(pad.width * pad.height);
    for (let i = 0; i < alpha.length; i++) alpha[i] = Math.round(a[4 * i + 3] / 2.55) / 100;   // ink in [0, 1]
    const body = { drawing: { width: pad.width, height: pad.height, alpha } };
    if (lab.label !== null) body.label = lab.label;
    showForward(await post("/api/forward", body));
    if (lab.label !== null) showBackward(await post("/api/backward", { image: lab.image, label: lab.label }));
  } catch (e) { say(e.message); }
  lab.busy = false;
  if (lab.pending) { lab.pending = false; sendDrawing(); }
}

pad.addEventListener("pointerdown", (e) => {
  pad.setPointerCapture(e.pointerId);
  if (!drawn) {   // a new drawing: its true label is not known until chosen
    $("picked").textContent = "your drawing: choose its true label Y below to see the backward pass";
    lab.label = null;
    document.querySelectorAll("#labels button").forEach((b) => b.classList.remove("chosen"));
    $("backward").hidden = true;
    $("loss").textContent = "–";
  }
  drawing = true; last = null;
  strokeTo(e);
  sendDrawing();
});
pad.addEventListener("pointermove", (e) => { if (drawing) { strokeTo(e); sendDrawing(); } });
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (drawing) { drawing = false; last = null; sendDrawing(); } });
}
$("clear").addEventListener("click", () => {
  pen.clearRect(0, 0, pad.width, pad.height);
  drawn = false;
  sendDrawing();
});

// --- test images ----------------------------------------------------------------------------------------

async function showTest(body) {
  const f = await post("/api/test-image", body);
  pen.clearRect(0, 0, pad.width, pad.height);
  drawn = false;
  $("index").value = f.index;
  $("picked").textContent = `test image ${f.index} of ${f.count}: its label is ${f.label}, ` +
    `the network says ${f.prediction} (${f.prediction === f.label ? "right" : "wrong"})`;
  lab.image = f.image;
  chooseLabel(f.label);
}
$("load").addEventListener("click", () => guarded(() => showTest({ index: Number($("index").value) })));
$("misclassified").addEventListener("click", () => guarded(() => showTest({ misclassified: true })));

// --- one step -------------------------------------------------------------------------------------------

$("step").addEventListener("click", () => guarded(async () => {
  const s = await post("/api/step", { image: lab.image, label: lab.label, alpha: Number($("alpha").value) });
  $("step-result").hidden = false;
  $("loss-before").textContent = fmt(s.before.loss);
  $("loss-after").textContent = fmt(s.after.loss);
  $("loss-before").dataset.loss = s.before.loss;
  $("loss-after").dataset.loss = s.after.loss;
  bars($("probs-before"), s.before.A2, { truth: s.label });
  bars($("probs-after"), s.after.A2, { truth: s.label });
  say(`one step with α = ${s.alpha}: L ${fmt(s.before.loss)} → ${fmt(s.after.loss)}`, true);
  await refresh();
}));
$("reset").addEventListener("click", () => guarded(async () => {
  await post("/api/reset");
  $("step-result").hidden = true;
  say("back to the starting weights", true);
  await refresh();
}));
$("save").addEventListener("click", () => guarded(async () => {
  const s = await post("/api/save");
  say(`saved to ${s.saved}`, true);
}));

// --- training -------------------------------------------------------------------------------------------

function batchSize() {
  return $("batch-mode").value === "full" ? null : Number($("batch-size").value);
}

function drawCurve() {
  const c = $("curve"), ctx = c.getContext("2d"), h = lab.history;
  const W = c.width, H = c.height, L = 46, R = 46, T = 14, B = 26;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#d0d5dd";
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  c.dataset.points = h.length;
  if (!h.length) return;
  const maxStep = Math.max(h[h.length - 1].step, 1), maxLoss = Math.max(...h.map((e) => e.loss), 1e-6);
  const x = (s) => L + (W - L - R) * s / maxStep, y = (v, top) => T + (H - T - B) * (1 - v / top);
  const line = (points, color) => {
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    points.forEach(([s, v], i) => (i ? ctx.lineTo(x(s), v) : ctx.moveTo(x(s), v)));
    ctx.stroke();
  };
  line(h.map((e) => [e.step, y(e.loss, maxLoss)]), "#dc2626");
  line(h.map((e) => [e.step, y(e.train_accuracy, 1)]), "#2563eb");
  line(h.filter((e) => e.test_accuracy !== undefined).map((e) => [e.step, y(e.test_accuracy, 1)]), "#15803d");
  ctx.fillStyle = "#667085";
  ctx.fillText(`loss ${maxLoss.toFixed(2)}`, 2, T + 8);
  ctx.fillText("0", L - 12, H - B);
  ctx.fillText("acc 1", W - R + 4, T + 8);
  ctx.fillText(`step ${maxStep}`, W - R - 50, H - 8);
  const e = h[h.length - 1];
  const legend = [["#dc2626", `loss ${e.loss.toFixed(4)}`], ["#2563eb", `train acc ${e.train_accuracy.toFixed(4)}`]];
  const tested = h.filter((d) => d.test_accuracy !== undefined);
  if (tested.length) legend.push(["#15803d", `test acc ${tested[tested.length - 1].test_accuracy.toFixed(4)}`]);
  legend.forEach(([color, text], i) => { ctx.fillStyle = color; ctx.fillText(text, L + 8 + 150 * i, H - 8); });
}

function showTraining(s) {
  lab.trainState = s.state;
  // the entries from index history_length − history.length on: an overlapping poll cannot add them twice
  lab.history = lab.history.slice(0, s.history_length - s.history.length).concat(s.history);
  drawCurve();
  const W = s.weights;
  units($("train-weights"), W.W1, W.W1.map((_, j) => `j=${j}`));
  const where = `step ${s.step} of ${s.steps}, lr ${s.lr}, ${s.batch_size === null ? "full batch" :
    "minibatches of " + s.batch_size}`;
  $("train-status").textContent = `${s.state}: ${where}${s.error ? " — " + s.error : ""}`;
  $("train-start").disabled = s.state === "running" || s.state === "paused";
  $("train-pause").disabled = !(s.state === "running" || s.state === "paused");
  $("train-pause").textContent = s.state === "paused" ? "Resume" : "Pause";
}

async function poll() {
  if (lab.pollBusy) return;   // one poll at a time: a slow server gets no pile of requests
  lab.pollBusy = true;
  try {
    const s = await post("/api/train/status", { since: lab.history.length });
    showTraining(s);
    if (s.state !== "running") {
      clearInterval(lab.polling);
      lab.polling = null;
      await refresh();
    }
  } catch (e) { say(e.message); }
  lab.pollBusy = false;
}

function startPolling() {
  if (!lab.polling) lab.polling = setInterval(poll, 300);
}

$("train-start").addEventListener("click", () => guarded(async () => {
  const s = await post("/api/train/start", { lr: Number($("lr").value), batch_size: batchSize(),
                                              steps: Number($("steps").value), init: $("init").value });
  lab.history = [];
  showTraining(s);
  startPolling();
}));
$("train-pause").addEventListener("click", () => guarded(async () => {
  const s = lab.trainState === "paused" ?
    await post("/api/train/resume", { lr: Number($("lr").value), batch_size: batchSize() }) :
    await post("/api/train/pause");
  showTraining(s);
  if (s.state === "running") startPolling();
}));

// --- start ----------------------------------------------------------------------------------------------

async function main() {
  const s = await post("/api/state");
  lab.hidden = s.hidden;
  $("source").textContent = `784-${s.hidden}-10, ${s.source}`;
  $("save").hidden = !s.can_save;
  $("index").max = s.test_count - 1;
  $("labels").replaceChildren(...Array.from({ length: 10 }, (_, d) => {
    const b = document.createElement("button");
    b.textContent = d;
    b.dataset.digit = d;
    b.addEventListener("click", () => chooseLabel(d));
    return b;
  }));
  showTraining({ ...s.training, weights: s });
  if (s.training.state === "running") startPolling();
  await showTest({ index: 0 });
}
guarded(main);
