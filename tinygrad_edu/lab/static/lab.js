// The lab's page: it only draws. Every number comes from the server (tinygrad_edu), as JSON from POST /api/...
"use strict";

const $ = (id) => document.getElementById(id);
const lab = { image: null, label: null, hidden: 10, busy: false, pending: false, history: [],
              polling: null, pollBusy: false, trainState: "idle", training: null,
              lang: "en", msgs: {}, source: "", origin: null, trainCount: 0,
              changed: null, singleSteps: 0,     // what changed the starting weights: null, "training" or steps
              status: null, picked: null, backward: null, nudged: null, shapes: {} };

// --- the page's words: the message catalogue's (tinygrad_edu/messages/lab.json), from POST /api/messages -----

// t("stepped", {alpha: 0.1}): the message in the page's language, its {name} fields filled as Python fills them
function t(key, fields = {}) {
  const text = lab.msgs[key] ?? key;
  return text.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name) => (name in fields ? String(fields[name]) : m));
}

function translatePage() {
  document.documentElement.lang = lab.lang;
  document.querySelectorAll("[data-msg]").forEach((el) => { el.textContent = t(el.dataset.msg); });
  document.querySelectorAll("[data-msg-aria]").forEach((el) => el.setAttribute("aria-label", t(el.dataset.msgAria)));
  showSource();
  showPicked();
  showStatus();
  if (lab.training) showTraining(lab.training, false);
  if (lab.backward) showBackward(lab.backward);
  if (lab.nudged) showNudge(lab.nudged);
}

async function setLanguage(lang) {
  const m = await post("/api/messages", lang ? { lang } : {});
  lab.lang = m.lang;
  lab.msgs = m.messages;
  $("lang").value = m.lang;
  translatePage();
}

// --- talking to the server ------------------------------------------------------------------------------

async function post(path, body = {}) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                       body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(data.error || `${response.status}`);
  return data;
}

// the status line: a message (key and fields, so that a language switch rewords it) or a server's error
function say(key, fields = {}, ok = true) {
  lab.status = { key, fields, ok };
  showStatus();
}

function sayError(message) {
  lab.status = { raw: message, ok: false };
  showStatus();
}

function showStatus() {
  const s = $("status"), st = lab.status;
  s.textContent = st ? (st.raw ?? t(st.key, st.fields)) : "";
  s.className = st && !st.ok ? "" : "ok";
}

async function guarded(action) {
  try { await action(); } catch (e) { sayError(e.message); }
}

// the header: where the weights now come from (the startup's training, a file, a run of panel 4, single steps)
function showSource() {
  const o = lab.origin;
  let source = lab.source;
  if (o && o.kind === "startup") source = t("origin_startup", o);
  else if (o && o.kind === "file") source = t("origin_file", o);
  if (lab.changed === "training" && lab.training) {
    const s = lab.training;
    source = t("origin_trained", { state: t(`state_${s.state}`), step: s.step, steps: s.steps });
  } else if (lab.singleSteps > 0) {
    source = t("origin_stepped", { source, count: lab.singleSteps });
  }
  $("source").textContent = t("network", { hidden: lab.hidden, source });
}

function showPicked() {
  const p = lab.picked;
  $("picked").textContent = !p ? "" : t(p.key, p.verdict ? { ...p.fields, verdict: t(p.verdict) } : p.fields);
}

// a step's Before/After and its status line belong to one image, label and set of weights: gone when they change
function forgetStep() {
  $("step-result").hidden = true;
  if (lab.status && lab.status.key === "stepped") { lab.status = null; showStatus(); }
}

function updateButtons() {
  const training = lab.trainState === "running" || lab.trainState === "paused";
  $("step").disabled = lab.label === null || training;
  $("nudge").disabled = lab.label === null;
  $("batch-size").disabled = $("batch-mode").value === "full";
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
    (mask ? `<td>${mask[k] ? t("relu_on") : `<span class=muted>${t("masked")}</span>`}</td>` : "") + "</tr>");
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
    tr.append(cell("th", `k=${k}`), ...row.map((v, j) => {
      const share = Math.min(1, Math.abs(v) / scale), c = Math.round(255 * (1 - 0.6 * share));
      const td = cell("td", fmt(v, 3));
      td.dataset.k = k;
      td.dataset.j = j;
      const chosen = lab.nudgeChoice;
      if (chosen && chosen.param === "W2" && chosen.row === k && chosen.col === j) td.classList.add("chosen");
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
  updateButtons();
}

function showBackward(b) {
  lab.backward = b;
  $("backward").hidden = false;
  $("nudge-panel").hidden = false;
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
  if (d !== lab.label) forgetStep();
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
  } catch (e) { sayError(e.message); }
  lab.busy = false;
  if (lab.pending) { lab.pending = false; sendDrawing(); }
}

pad.addEventListener("pointerdown", (e) => {
  pad.setPointerCapture(e.pointerId);
  if (!drawn) {   // a new drawing: its true label is not known until chosen
    lab.picked = { key: "picked_drawing" };
    showPicked();
    forgetLabel();
  }
  drawing = true; last = null;
  strokeTo(e);
  sendDrawing();
});
pad.addEventListener("pointermove", (e) => { if (drawing) { strokeTo(e); sendDrawing(); } });
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (drawing) { drawing = false; last = null; sendDrawing(); } });
}
// no label, no backward pass: what a new drawing or a cleared pad starts from
function forgetLabel() {
  forgetStep();
  lab.label = null;
  lab.backward = null;
  document.querySelectorAll("#labels button").forEach((b) => b.classList.remove("chosen"));
  $("backward").hidden = true;
  $("nudge-panel").hidden = true;
  $("nudge-result").hidden = true;
  lab.nudged = null;
  $("loss").textContent = "–";
}

$("clear").addEventListener("click", () => {
  pen.clearRect(0, 0, pad.width, pad.height);
  drawn = false;
  lab.picked = { key: "picked_empty" };
  showPicked();
  forgetLabel();
  sendDrawing();
});

// --- test images ----------------------------------------------------------------------------------------

async function showTest(body) {
  const f = await post("/api/test-image", body);
  pen.clearRect(0, 0, pad.width, pad.height);
  drawn = false;
  $("index").value = f.index;
  lab.picked = { key: "picked_test", fields: { index: f.index, count: f.count, label: f.label, prediction: f.prediction },
                 verdict: f.prediction === f.label ? "right" : "wrong" };
  showPicked();
  if (lab.image === null || f.index !== lab.pickedIndex) forgetStep();
  lab.pickedIndex = f.index;
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
  if (lab.changed !== "training") lab.singleSteps += 1;
  showSource();
  say("stepped", { alpha: s.alpha, before: fmt(s.before.loss), after: fmt(s.after.loss) });
  await refresh();
}));
$("reset").addEventListener("click", () => guarded(async () => {
  await post("/api/reset");
  forgetStep();
  lab.changed = null;
  lab.singleSteps = 0;
  showTraining(await post("/api/train/status", { since: lab.history.length }));
  say("was_reset");
  await refresh();
}));
$("save").addEventListener("click", () => guarded(async () => {
  const s = await post("/api/save");
  say("saved", { path: s.saved });
}));

// --- a nudge: finite differences for one weight beside the backward pass's dW -----------------------------

function nudgeLimits() {
  const shape = lab.shapes[$("nudge-param").value] || [1, 1];
  $("nudge-row").max = shape[0] - 1;
  $("nudge-col").max = shape[1] - 1;
}

$("nudge-param").addEventListener("change", nudgeLimits);
$("dW2").addEventListener("click", (e) => {
  const td = e.target.closest("td");
  if (!td || td.dataset.k === undefined) return;
  $("nudge-param").value = "W2";
  $("nudge-row").value = td.dataset.k;
  $("nudge-col").value = td.dataset.j;
  lab.nudgeChoice = { param: "W2", row: Number(td.dataset.k), col: Number(td.dataset.j) };
  nudgeLimits();
  $("dW2").querySelectorAll("td.chosen").forEach((c) => c.classList.remove("chosen"));
  td.classList.add("chosen");
});

const precise = (x) => (x === 0 ? "0" : Math.abs(x) < 1e-3 || Math.abs(x) >= 1e4 ? x.toExponential(6) : x.toPrecision(7));

function showNudge(n) {
  lab.nudged = n;
  const index = n.index.join(", ");
  $("nudge-result").hidden = false;
  $("nudge-losses").textContent = t("nudge_result", { name: n.param, index, w: precise(n.w),
                                                      plus: precise(n.loss_plus), minus: precise(n.loss_minus) });
  $("nudge-numeric").textContent = t("nudge_numeric", { numeric: precise(n.numeric) });
  $("nudge-numeric").dataset.value = n.numeric;
  $("nudge-backward").textContent = t("nudge_backward", { name: n.param, index, backward: precise(n.backward) });
  $("nudge-backward").dataset.value = n.backward;
  $("nudge-difference").textContent = t("nudge_difference", { difference: n.difference.toExponential(2) });
}

$("nudge").addEventListener("click", () => guarded(async () => {
  lab.nudgeChoice = { param: $("nudge-param").value, row: Number($("nudge-row").value),
                      col: Number($("nudge-col").value) };
  showNudge(await post("/api/nudge", { image: lab.image, label: lab.label, param: lab.nudgeChoice.param,
                                       index: [lab.nudgeChoice.row, lab.nudgeChoice.col],
                                       eps: Number($("nudge-eps").value) }));
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
  ctx.fillText(t("curve_loss", { value: maxLoss.toFixed(2) }), 2, T + 8);
  ctx.fillText("0", L - 12, H - B);
  ctx.fillText(t("curve_acc"), W - R + 4, T + 8);
  ctx.textAlign = "right";
  ctx.fillText(t("curve_step", { step: maxStep }), W - R, H - 8);
  ctx.textAlign = "left";
  const e = h[h.length - 1];
  const legend = [["#dc2626", t("curve_loss", { value: e.loss.toFixed(4) })],
                  ["#2563eb", t("curve_train", { value: e.train_accuracy.toFixed(4) })]];
  const tested = h.filter((d) => d.test_accuracy !== undefined);
  if (tested.length) {
    legend.push(["#15803d", t("curve_test", { value: tested[tested.length - 1].test_accuracy.toFixed(4) })]);
  }
  let x0 = L + 8;
  legend.forEach(([color, text]) => {
    ctx.fillStyle = color;
    ctx.fillText(text, x0, H - 8);
    x0 += ctx.measureText(text).width + 18;
  });
}

function showTraining(s, fresh = true) {
  lab.trainState = s.state;
  if (fresh) {
    // the entries from index history_length − history.length on: an overlapping poll cannot add them twice
    lab.history = lab.history.slice(0, s.history_length - s.history.length).concat(s.history);
    units($("train-weights"), s.weights.W1, s.weights.W1.map((_, j) => `j=${j}`));
    lab.training = { ...s, history: [], weights: null };
  }
  drawCurve();
  const batch = s.batch_size === null ? t("full_batch") : t("minibatches", { size: s.batch_size });
  // before any run: what Start will do (the controls, not the trainer's defaults, say how)
  $("train-status").textContent = s.state === "idle" ? t("train_intro", { count: lab.trainCount }) :
    t("train_status", { state: t(`state_${s.state}`), step: s.step, steps: s.steps, lr: s.lr, batch }) +
    (s.error ? " — " + s.error : "");
  $("train-status").dataset.state = s.state;
  $("train-start").disabled = s.state === "running" || s.state === "paused";
  $("train-pause").disabled = !(s.state === "running" || s.state === "paused");
  $("train-pause").textContent = t(s.state === "paused" ? "resume" : "pause");
  updateButtons();
  showSource();
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
  } catch (e) { sayError(e.message); }
  lab.pollBusy = false;
}

function startPolling() {
  if (!lab.polling) lab.polling = setInterval(poll, 300);
}

$("train-start").addEventListener("click", () => guarded(async () => {
  const s = await post("/api/train/start", { lr: Number($("lr").value), batch_size: batchSize(),
                                              steps: Number($("steps").value), init: $("init").value });
  lab.history = [];
  lab.changed = "training";
  lab.singleSteps = 0;
  forgetStep();
  showTraining(s);
  startPolling();
}));
$("batch-mode").addEventListener("change", updateButtons);
$("lang").addEventListener("change", () => guarded(() => setLanguage($("lang").value)));
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
  lab.source = s.source;
  lab.origin = s.origin;
  lab.trainCount = s.train_count;
  lab.shapes = { W1: [s.hidden, 784], b1: [s.hidden, 1], W2: [10, s.hidden], b2: [10, 1] };
  nudgeLimits();
  if (s.training.state !== "idle") {   // a run of an earlier visit: the controls show it
    lab.changed = "training";
    $("batch-mode").value = s.training.batch_size === null ? "full" : "mini";
    if (s.training.batch_size !== null) $("batch-size").value = s.training.batch_size;
    $("lr").value = s.training.lr;
  }
  await setLanguage(s.lang);
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
