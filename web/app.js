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
let lastUpload = null;         // {body, contentType} of the image on show, for explanations
let explaining = null;
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
  lastUpload = null;
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

async function predict(body, contentType) {
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
      headers: { "Content-Type": contentType, "X-Charts": "1" },
    });
    const payload = await response.json().catch(() => ({}));
    if (request !== inFlight) return;
    if (!response.ok) throw new Error(payload.message || `The server answered ${response.status} ${response.statusText}.`);
    showResult(payload);
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
}

function showResult(result) {
  $("error").hidden = true;
  $("status").textContent = "";
  $("digit").textContent = result.label;
  $("digit").classList.toggle("long", result.label.length > 2);
  // An outlier is named only faintly: the closest class, not an answer.
  $("digit").classList.toggle("faint", Boolean(result.outlier));
  $("outlier").textContent = result.outlier ? model.outlier_message : "";
  $("outlier").hidden = !result.outlier;
  $("confidence").textContent = `${(result.confidence * 100).toFixed(1)} %`;
  $("model-name").textContent = result.model ? `model ${result.model.name} v${result.model.version}` : "";
  showImage("prob-chart", result.charts.probabilities);
  showImage("model-input", result.charts.input);
  activationMaps = result.charts.activations;
  const select = $("layer-select");
  const chosen = select.value;
  select.replaceChildren(...Object.keys(activationMaps).map((name) => new Option(name, name)));
  select.value = chosen in activationMaps ? chosen : select.options[0].value;
  select.disabled = false;
  showImage("activations", activationMaps[select.value]);
  if (!model.explanations) return;
  showTargets(model.labels);
  explain(result.digit);
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
  if (!lastUpload || !model) return;
  explaining?.abort();
  const request = new AbortController();
  explaining = request;
  for (const button of $("explain-targets").children) button.setAttribute("aria-pressed", String(button.dataset.target === String(target)));
  $("explain-caption").textContent = `Explaining ${model.labels[target]}…`;
  try {
    const response = await fetch(`${API_BASE}/explanations/${model.name}`, {
      method: "POST", body: lastUpload.body, signal: request.signal,
      headers: { "Content-Type": lastUpload.contentType, "X-Charts": "1", "X-Target": String(target) },
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
