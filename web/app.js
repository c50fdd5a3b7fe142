// Digit Lens page: pick a model, draw or upload an image, ask the inference API, show the answer and why.
"use strict";

const params = new URLSearchParams(location.search);
const API_BASE = (params.get("api") ?? window.DIGIT_LENS_API ?? "").replace(/\/$/, "");
const PEN_WIDTH = 20;          // on the 280 px canvas: MNIST-like strokes once scaled to 20 px
const DEBOUNCE_MS = 200;

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const pen = canvas.getContext("2d");
const strokes = [];            // each stroke is a list of [x, y] in canvas pixels
let current = null;
let debounce = null;
let inFlight = null;
let activationMaps = {};
let lastUpload = null;         // {body, contentType} of the image on show
let explained = null;          // {body, contentType} explanations are asked of: the upload, or one digit cut out of it
let explaining = null;
let numberDigits = [];         // the digits of the number on show (X-Read: number), left to right
let numberSource = null;       // the upload they were read from, decoded once: boxes are drawn on it, digits cut from it
const BOX_MARGIN = 0.25;       // a digit cut out for its explanation keeps this share of its box's longer side round it
let models = [];               // models.json: what is served, written when the archives are built
let model = null;              // the chosen entry of models

function canvasPoint(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width,
          (event.clientY - box.top) * canvas.height / box.height];
}

function drawStroke(points) {
  pen.beginPath();
  pen.moveTo(...points[0]);
  for (const point of points.slice(1)) pen.lineTo(...point);
  if (points.length === 1) pen.lineTo(points[0][0] + 0.1, points[0][1]);
  pen.stroke();
}

function redraw() {
  pen.fillStyle = "white";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  Object.assign(pen, { strokeStyle: "#111", lineWidth: PEN_WIDTH, lineCap: "round", lineJoin: "round" });
  strokes.forEach(drawStroke);
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  clearTimeout(debounce);
  $("upload-preview").hidden = true;
  current = [canvasPoint(event)];
  strokes.push(current);
  redraw();
});
canvas.addEventListener("pointermove", (event) => {
  if (!current) return;
  current.push(canvasPoint(event));
  redraw();
});
function endStroke() {
  if (!current) return;
  current = null;
  clearTimeout(debounce);
  debounce = setTimeout(predictDrawing, DEBOUNCE_MS);
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function undo() {
  strokes.pop();
  redraw();
  strokes.length ? predictDrawing() : resetResult(model?.prompt ?? "");
}
function clearAll() {
  strokes.length = 0;
  lastUpload = explained = null;
  $("upload-preview").hidden = true;
  redraw();
  resetResult(model?.prompt ?? "");
}
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearAll);
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
  else if (event.key === "Escape" && document.activeElement === canvas) clearAll();
});

function predictDrawing() {
  if (!strokes.length) return;
  canvas.toBlob((blob) => predict(blob, "image/png"), "image/png");
}

function predictFile(file) {
  if (!file) return;
  strokes.length = 0;
  redraw();
  const preview = $("upload-preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  predict(file, file.type || "application/octet-stream");
}
$("file-input").addEventListener("change", (event) => predictFile(event.target.files[0]));
for (const target of [canvas.parentElement]) {
  target.addEventListener("dragover", (event) => { event.preventDefault(); target.classList.add("drag"); });
  target.addEventListener("dragleave", () => target.classList.remove("drag"));
  target.addEventListener("drop", (event) => {
    event.preventDefault();
    target.classList.remove("drag");
    predictFile(event.dataTransfer.files[0]);
  });
}
document.addEventListener("paste", (event) => {
  const item = [...event.clipboardData.items].find((entry) => entry.type.startsWith("image/"));
  if (item) predictFile(item.getAsFile());
});

async function predict(body, contentType, read = "digit") {
  if (!model) return;
  inFlight?.abort();
  explaining?.abort();
  lastUpload = { body, contentType };
  const request = new AbortController();
  inFlight = request;
  setBusy(true);
  try {
    const response = await fetch(`${API_BASE}/predictions/${model.name}`, {
      method: "POST", body, signal: request.signal,
      headers: { "Content-Type": contentType, "X-Charts": "1", "X-Read": read },
    });
    const payload = await response.json().catch(() => ({}));
    if (request !== inFlight) return;
    if (!response.ok) throw new Error(payload.message || `The server answered ${response.status} ${response.statusText}.`);
    if (read === "number") showNumber(payload);
    else if (payload.looks_like_number && model.preprocess === "digit") {
      inFlight = null;
      predict(body, contentType, "number");       // several digits in a row: read them as a number
      return;
    } else showResult(payload);
  } catch (error) {
    if (error.name === "AbortError") return;
    const message = error instanceof TypeError
      ? `Cannot reach the Digit Lens server at ${API_BASE || location.origin}. Is it running?`
      : error.message;
    resetResult("");
    showError(message);
  } finally {
    if (request === inFlight) { setBusy(false); inFlight = null; }
  }
}

function setBusy(busy) {
  $("result").setAttribute("aria-busy", String(busy));
  if (busy) $("status").textContent = "Recognising…";
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function showImage(id, src) {
  $(id).src = src;
  $(id).hidden = false;
}

function resetResult(status) {
  $("status").textContent = status;
  $("error").hidden = true;
  $("digit").textContent = "–";
  $("digit").classList.remove("faint");
  $("outlier").hidden = true;
  $("confidence").textContent = "–";
  for (const id of ["prob-chart", "model-input", "activations", "attributions"]) $(id).hidden = true;
  $("explain-targets").replaceChildren();
  $("explain-caption").textContent = "";
  $("layer-select").replaceChildren();
  $("layer-select").disabled = true;
  $("number-view").hidden = true;
  $("number-digits").replaceChildren();
  numberDigits = [];
}

function showResult(result) {
  $("error").hidden = true;
  $("status").textContent = "";
  $("number-view").hidden = true;
  $("digit").textContent = result.label;
  $("digit").classList.toggle("long", result.label.length > 2);
  showReading(result);
  $("model-name").textContent = result.model ? `model ${result.model.name} v${result.model.version}` : "";
  explained = lastUpload;
  if (model.explanations) showTargets(model.labels);
  explain(result.digit);
}

function showReading(reading) {
  // An outlier is named only faintly: the closest class, not an answer.
  $("digit").classList.toggle("faint", Boolean(reading.outlier));
  $("outlier").textContent = reading.outlier ? model.outlier_message : "";
  $("outlier").hidden = !reading.outlier;
  $("confidence").textContent = `${(reading.confidence * 100).toFixed(1)} %`;
  showImage("prob-chart", reading.charts.probabilities);
  showImage("model-input", reading.charts.input);
  activationMaps = reading.charts.activations;
  const select = $("layer-select");
  const chosen = select.value;
  select.replaceChildren(...Object.keys(activationMaps).map((name) => new Option(name, name)));
  select.value = chosen in activationMaps ? chosen : select.options[0].value;
  select.disabled = false;
  showImage("activations", activationMaps[select.value]);
}

async function showNumber(result) {
  $("error").hidden = true;
  const doubt = result.alternative ?
    `Where digits touch the split is in doubt: perhaps ${result.alternative.number} ` +
    `(${(result.alternative.confidence * 100).toFixed(1)} %).` : "";
  $("status").textContent = result.number === null ? "No digit found in the image." : doubt;
  $("number-view").hidden = false;
  $("number").textContent = result.number ?? "–";
  $("model-name").textContent = `model ${result.model.name} v${result.model.version} · whole number ${(result.confidence * 100).toFixed(1)} %`;
  numberDigits = result.digits;
  const chips = numberDigits.map((digit, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = digit.label;
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", `digit ${index + 1}: ${digit.label}, ${(digit.confidence * 100).toFixed(1)} %`);
    button.addEventListener("click", () => showDigit(index));
    return button;
  });
  $("number-digits").replaceChildren(...chips);
  numberSource = await createImageBitmap(lastUpload.body);
  drawBoxes(numberSource, numberDigits);
  if (numberDigits.length) showDigit(0);
}

function drawBoxes(source, digits) {
  const view = $("number-boxes");
  const scale = Math.min(320 / source.width, 200 / source.height, 1);
  view.width = Math.round(source.width * scale);
  view.height = Math.round(source.height * scale);
  const sketch = view.getContext("2d");
  sketch.fillStyle = "white";
  sketch.fillRect(0, 0, view.width, view.height);
  sketch.drawImage(source, 0, 0, view.width, view.height);
  Object.assign(sketch, { strokeStyle: "#2563eb", lineWidth: 2, fillStyle: "#2563eb", font: "bold 14px system-ui" });
  digits.forEach((digit, index) => {
    const [x0, y0, x1, y1] = digit.box.map((edge) => edge * scale);
    sketch.strokeRect(x0, y0, x1 - x0, y1 - y0);
    sketch.fillText(`${index + 1}`, x0 + 2, Math.max(12, y0 - 3));
  });
}

async function showDigit(index) {
  const digit = numberDigits[index];
  [...$("number-digits").children].forEach((chip, i) => chip.setAttribute("aria-pressed", String(i === index)));
  $("digit").textContent = digit.label;
  $("digit").classList.toggle("long", digit.label.length > 2);
  showReading(digit);
  if (!model.explanations) return;
  explained = { body: await cutOut(numberSource, digit.box), contentType: "image/png" };
  showTargets(model.labels);
  explain(digit.digit);
}

function cutOut(source, [x0, y0, x1, y1]) {
  const margin = BOX_MARGIN * Math.max(x1 - x0, y1 - y0);
  const [left, top] = [Math.max(0, x0 - margin), Math.max(0, y0 - margin)];
  const [right, bottom] = [Math.min(source.width, x1 + margin), Math.min(source.height, y1 + margin)];
  const piece = document.createElement("canvas");
  [piece.width, piece.height] = [Math.round(right - left), Math.round(bottom - top)];
  const sketch = piece.getContext("2d");
  sketch.fillStyle = "white";
  sketch.fillRect(0, 0, piece.width, piece.height);
  sketch.drawImage(source, left, top, right - left, bottom - top, 0, 0, piece.width, piece.height);
  return new Promise((resolve) => piece.toBlob(resolve, "image/png"));
}

function showTargets(labels) {
  const buttons = labels.map((label, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.dataset.target = String(index);
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => explain(index));
    return button;
  });
  $("explain-targets").replaceChildren(...buttons);
  $("explain-targets").classList.toggle("long", labels.some((label) => label.length > 2));
}

async function explain(target) {
  if (!explained || !model?.explanations) return;
  explaining?.abort();
  const request = new AbortController();
  explaining = request;
  for (const button of $("explain-targets").children) button.setAttribute("aria-pressed", String(button.dataset.target === String(target)));
  $("explain-caption").textContent = `Explaining ${model.labels[target]}…`;
  try {
    const response = await fetch(`${API_BASE}/explanations/${model.name}`, {
      method: "POST", body: explained.body, signal: request.signal,
      headers: { "Content-Type": explained.contentType, "X-Charts": "1", "X-Target": String(target) },
    });
    const payload = await response.json().catch(() => ({}));
    if (request !== explaining) return;
    if (!response.ok) throw new Error(payload.message || `The server answered ${response.status} ${response.statusText}.`);
    showImage("attributions", payload.charts.attributions);
    const probability = (payload.probabilities[payload.target] * 100).toFixed(1);
    $("explain-caption").textContent = `Why ${model.labels[payload.target]} (probability ${probability} %)`;
  } catch (error) {
    if (error.name === "AbortError") return;
    $("explain-caption").textContent = `No explanation: ${error.message}`;
  }
}
$("layer-select").addEventListener("change", (event) => showImage("activations", activationMaps[event.target.value]));

function chooseModel(name) {
  model = models.find((entry) => entry.name === name) ?? models[0];
  $("model-select").value = model.name;
  const url = new URL(location.href);
  url.searchParams.set("model", model.name);
  history.replaceState(null, "", url);
  $("input-heading").textContent = model.title;
  $("prompt").textContent = model.prompt;
  $("input-caption").textContent = `What the network saw: ${model.input_caption}`;
  $("prob-chart").alt = `Bar chart of the probability of each class: ${model.labels.join(", ")}`;
  $("why-card").hidden = !model.explanations;
  if (lastUpload) predict(lastUpload.body, lastUpload.contentType);
  else if (strokes.length) predictDrawing();          // drawn while the list was loading
  else resetResult(model.prompt);
}

async function loadModels() {
  try {
    const response = await fetch("models.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`models.json: the server answered ${response.status}`);
    models = (await response.json()).models;
    if (!models?.length) throw new Error("models.json lists no models");
  } catch (error) {
    resetResult("");
    showError(`Cannot load the list of served models (${error.message}).`);
    return;
  }
  $("model-select").replaceChildren(...models.map((entry) => new Option(entry.title, entry.name)));
  $("model-select").disabled = models.length < 2;
  $("model-select").addEventListener("change", (event) => chooseModel(event.target.value));
  chooseModel(params.get("model"));
}

redraw();
loadModels();
