// The live pipeline page: one server-sent-events stream for the figures (one snapshot a second),
// pages of pods and one pod's view fetched when asked for. No dependencies, no build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const BOX = { width: 160, height: 130, gap: 30, top: 30 };
const state = { phase: "Running", page: 0, size: 50, total: 0, selected: null, phases: {} };

function el(name, attributes, parent, ns) {
  const node = ns ? document.createElementNS(ns, name) : document.createElement(name);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function text(parent, x, y, content, cls) {
  const node = el("text", { x, y, class: cls || "" }, parent, SVG);
  node.textContent = content;
  return node;
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value < 1 ? value.toFixed(3) + " ms" : value < 100 ? value.toFixed(1) + " ms" : Math.round(value) + " ms";
}

// The graph is drawn once; each snapshot only changes the texts and bars.
const boxes = new Map();
function drawGraph(stages) {
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const defs = el("defs", {}, svg, SVG);
  for (const [id, color] of [["arrow", "#1d2430"], ["arrow-muted", "#687386"]]) {
    const marker = el("marker", { id, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs, SVG);
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: color }, marker, SVG);
  }
  const x = i => 10 + i * (BOX.width + BOX.gap);
  const last = stages.length - 1;
  stages.forEach((stage, i) => {
    const g = el("g", { class: "stage", "data-stage": stage.name, transform: `translate(${x(i)},${BOX.top})` }, svg, SVG);
    el("rect", { class: "frame", width: BOX.width, height: BOX.height }, g, SVG);
    text(g, 10, 20, stage.name, "name");
    const tag = text(g, BOX.width - 10, 20, "", "tag");
    tag.setAttribute("text-anchor", "end");
    const lines = [text(g, 10, 42, ""), text(g, 10, 60, ""), text(g, 10, 78, ""), text(g, 10, 96, "")];
    el("rect", { class: "bar", x: 10, y: 108, width: BOX.width - 20, height: 8, rx: 4 }, g, SVG);
    const fill = el("rect", { class: "fill", x: 10, y: 108, width: 0, height: 8, rx: 4 }, g, SVG);
    boxes.set(stage.name, { g, tag, lines, fill });
    if (i < last) {
      const y = BOX.top + 45;
      el("path", { class: "apply", d: `M${x(i) + BOX.width},${y} L${x(i + 1) - 2},${y}` }, svg, SVG);
      if (i < last - 1) {
        const back = BOX.top + 90;
        el("path", { class: "teardown", d: `M${x(i + 1)},${back} L${x(i) + BOX.width + 2},${back}` }, svg, SVG);
      }
      // Any stage may hand an item straight to the status report (a failure, a finished item).
      el("path", { class: "exit", d: `M${x(i) + BOX.width / 2},${BOX.top + BOX.height} L${x(i) + BOX.width / 2},${BOX.top + BOX.height + 25}` }, svg, SVG);
    }
  });
  const bus = BOX.top + BOX.height + 25;
  el("path", { class: "exit", d: `M${x(0) + BOX.width / 2},${bus} L${x(last) + BOX.width / 2},${bus} L${x(last) + BOX.width / 2},${BOX.top + BOX.height + 2}`, "marker-end": "url(#arrow-muted)" }, svg, SVG);
  text(svg, 10, 18, "apply →", "").setAttribute("fill", "#687386");
  text(svg, 10, BOX.top + BOX.height + 45, "← teardown runs the stages in reverse; any stage may send an item straight to the status report", "").setAttribute("fill", "#687386");
}

function update(snapshot) {
  document.getElementById("node").textContent = snapshot.node;
  if (boxes.size !== snapshot.stages.length) drawGraph(snapshot.stages);
  for (const stage of snapshot.stages) {
    const box = boxes.get(stage.name);
    const bottleneck = stage.name === snapshot.bottleneck;
    box.g.classList.toggle("bottleneck", bottleneck);
    box.g.setAttribute("data-in-flight", stage.inFlight);
    box.g.setAttribute("data-processed", stage.processed);
    box.tag.textContent = bottleneck ? "bottleneck" : "";
    box.lines[0].textContent = `in flight ${stage.inFlight} / ${stage.parallelism}`;
    box.lines[1].textContent = `queue ${stage.queueDepth} (holds ${stage.capacity})`;
    box.lines[2].textContent = `${stage.perSecond.toFixed(stage.perSecond < 10 ? 1 : 0)}/s · ${stage.processed} done`;
    box.lines[3].textContent = `${ms(stage.p50Milliseconds)} / ${ms(stage.p99Milliseconds)}`;
    box.fill.setAttribute("width", Math.min(1, stage.load) * (BOX.width - 20));
  }
  const changed = JSON.stringify(snapshot.phases) !== JSON.stringify(state.phases);
  state.phases = snapshot.phases;
  drawPhases();
  if (changed) loadPods();
}

// The phase buttons and the table rows are changed in place, not redrawn each second, so a click
// never lands on an element that has just been replaced.
function drawPhases() {
  const nav = document.getElementById("phases");
  for (const [phase, count] of Object.entries(state.phases)) {
    let button = nav.querySelector(`button[data-phase="${phase}"]`);
    if (!button) {
      button = el("button", { type: "button", "data-phase": phase }, nav);
      button.onclick = () => { state.phase = phase; state.page = 0; drawPhases(); loadPods(); };
    }
    button.textContent = `${phase} ${count}`;
    button.classList.toggle("selected", phase === state.phase);
  }
}

let loading = null;
async function loadPods() {
  // At most one request for the table at a time; a change while it runs asks again afterwards.
  if (loading) { loading.again = true; return; }
  loading = { again: false };
  try {
    const response = await fetch(`/pipeline/pods?phase=${encodeURIComponent(state.phase)}&page=${state.page}&size=${state.size}`);
    const body = await response.json();
    state.total = body.total;
    const pages = Math.max(1, Math.ceil(state.total / state.size));
    document.getElementById("page").textContent = `page ${state.page + 1} of ${pages} (${state.total} pods)`;
    document.getElementById("previous").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page + 1 >= pages;
    const rows = document.querySelector("#pods tbody");
    const shown = JSON.stringify(body.pods);
    if (rows.dataset.shown === shown) return;
    rows.dataset.shown = shown;
    rows.replaceChildren();
    for (const pod of body.pods) {
      const row = el("tr", { "data-uid": pod.uid }, rows);
      for (const value of [pod.name, pod.namespace, pod.phase, new Date(pod.seenAt).toLocaleTimeString()]) el("td", {}, row).textContent = value;
      row.onclick = () => { state.selected = pod.uid; loadPod(); };
    }
  } finally {
    const again = loading.again;
    loading = null;
    if (again) loadPods();
  }
}

async function loadPod() {
  const detail = document.getElementById("detail");
  const response = await fetch(`/pipeline/pods/${encodeURIComponent(state.selected)}`);
  detail.hidden = false;
  if (!response.ok) {
    document.getElementById("detail-title").textContent = "that pod has left the node";
    return;
  }
  const body = await response.json();
  document.getElementById("detail-title").textContent = `${body.pod.namespace}/${body.pod.name} (${body.pod.uid})`;
  const rows = document.querySelector("#timeline tbody");
  rows.replaceChildren();
  for (const line of body.timeline) {
    const row = el("tr", {}, rows);
    for (const value of [`+${line.offsetSeconds.toFixed(3)}`, line.phase, line.description]) el("td", {}, row).textContent = value;
  }
  const logs = document.getElementById("logs");
  logs.replaceChildren();
  for (const [container, lines] of Object.entries(body.logs)) {
    el("h3", {}, logs).textContent = `log tail: ${container}`;
    el("pre", { "data-container": container }, logs).textContent = lines.length ? lines.join("\n") : "(no output yet)";
  }
}

document.getElementById("previous").onclick = () => { state.page = Math.max(0, state.page - 1); loadPods(); };
document.getElementById("next").onclick = () => { state.page += 1; loadPods(); };
document.getElementById("detail-refresh").onclick = () => loadPod();
document.getElementById("window").textContent = "2,048";

const connection = document.getElementById("connection");
const events = new EventSource("/pipeline/events");
events.onopen = () => { connection.textContent = "live"; connection.classList.add("live"); };
events.onerror = () => { connection.textContent = "reconnecting…"; connection.classList.remove("live"); };
events.onmessage = message => update(JSON.parse(message.data));
