// medbench dashboard: polls /dashboard/api/status, draws nodes, throughput, latency, blocks,
// a block's Merkle tree and a transaction's inclusion proof. No libraries.
"use strict";
const $ = (id) => document.getElementById(id);
const hist = { tput: [], p50: [], p99: [] };
let selected = null;

function spark(canvas, series, colors) {
  const c = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  c.clearRect(0, 0, w, h);
  const max = Math.max(1, ...series.flat());
  series.forEach((s, k) => {
    c.strokeStyle = colors[k]; c.beginPath();
    s.forEach((v, i) => {
      const x = (i / 59) * (w - 4) + 2, y = h - 4 - (v / max) * (h - 8);
      i ? c.lineTo(x, y) : c.moveTo(x, y);
    });
    c.stroke();
  });
  c.fillStyle = "#666"; c.fillText(max.toFixed(1), 4, 10);
}

function push(a, v) { a.push(v); if (a.length > 60) a.shift(); }

function renderNodes(nodes) {
  const body = $("nodes").tBodies[0];
  body.textContent = "";
  for (const n of nodes) {
    const tr = document.createElement("tr");
    tr.dataset.node = n.id;
    tr.className = n.up ? "up" : "down";
    const cells = n.up
      ? [n.id, "up", n.view, n.primary, n.last_executed, n.height, n.peers]
      : [n.id, "down", "–", "–", "–", "–", "–"];
    cells.forEach((v, i) => {
      const td = document.createElement("td");
      if (i === 1) td.className = "state";
      td.textContent = v; tr.appendChild(td);
    });
    body.appendChild(tr);
  }
}

function renderBlocks(blocks) {
  const ol = $("blocks");
  ol.textContent = "";
  for (const b of blocks) {
    const li = document.createElement("li");
    li.dataset.height = b.height;
    if (selected === b.height) li.className = "sel";
    li.innerHTML = `block ${b.height} · ${b.tx_ids.length} tx · <code>${b.block_id.slice(0, 12)}</code>`;
    li.onclick = () => showBlock(b.height);
    ol.appendChild(li);
  }
}

async function showBlock(h, highlight) {
  selected = h;
  const r = await fetch(`/chain/blocks/${h}`);
  if (!r.ok) return;
  const b = await r.json();
  $("tree-title").textContent = `block ${h}: root ${b.header.merkle_root.slice(0, 16)}…`;
  drawTree(b, highlight);
  const p = $("proof");
  p.textContent = "";
  for (const t of b.tx_ids.slice(0, 64)) {
    const a = document.createElement("a");
    a.className = "tx"; a.textContent = t.slice(0, 24) + "…";
    a.onclick = () => showProof(t);
    p.appendChild(a);
  }
}

async function showProof(tx) {
  const r = await fetch(`/chain/transactions/${tx}/proof`);
  if (!r.ok) return;
  const pr = await r.json();
  await showBlock(pr.height, pr);
  const p = $("proof");
  const div = document.createElement("div");
  div.id = "proof-detail";
  div.innerHTML = `<b>inclusion proof</b> of <code>${tx.slice(0, 16)}…</code>: entry ${pr.index}` +
    ` of ${pr.count} in block ${pr.height}, ${pr.path.length} sibling hashes ` +
    `(<a href="/chain/transactions/${tx}/proof" download="proof-${tx.slice(0, 8)}.json">download` +
    `</a>; check offline with <code>medbench verify --proof FILE</code>)`;
  p.prepend(div);
}

function drawTree(b, proof) {
  const svg = $("tree"), levels = b.tree || [];
  svg.textContent = "";
  if (!levels.length) return;
  const W = svg.width.baseVal.value, H = svg.height.baseVal.value;
  const rows = levels.length, dy = (H - 20) / Math.max(rows - 1, 1);
  const pos = levels.map((lv, r) => lv.map((_, i) => [
    ((i + 0.5) / lv.length) * W, H - 10 - r * dy]));
  // which nodes the proof touches: the path from the leaf up, and its siblings
  const onPath = new Set(), sib = new Set();
  if (proof) {
    let i = proof.index;
    for (let r = 0; r < rows; r++) {
      onPath.add(`${r}:${i}`);
      if ((i ^ 1) < levels[r].length) sib.add(`${r}:${i ^ 1}`);
      i >>= 1;
    }
  }
  const ns = "http://www.w3.org/2000/svg";
  for (let r = 0; r + 1 < rows; r++) {
    levels[r].forEach((_, i) => {
      const [x1, y1] = pos[r][i], [x2, y2] = pos[r + 1][i >> 1];
      const l = document.createElementNS(ns, "line");
      l.setAttribute("x1", x1); l.setAttribute("y1", y1);
      l.setAttribute("x2", x2); l.setAttribute("y2", y2);
      l.setAttribute("stroke", onPath.has(`${r}:${i}`) ? "#c00" : "#bbb");
      svg.appendChild(l);
    });
  }
  levels.forEach((lv, r) => lv.forEach((hash, i) => {
    const [x, y] = pos[r][i], key = `${r}:${i}`;
    const c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", x); c.setAttribute("cy", y); c.setAttribute("r", 5);
    c.setAttribute("fill", onPath.has(key) ? "#c00" : sib.has(key) ? "#f90" : "#69c");
    c.setAttribute("class", onPath.has(key) ? "path" : sib.has(key) ? "sibling" : "node");
    const t = document.createElementNS(ns, "title");
    t.textContent = hash; c.appendChild(t);
    svg.appendChild(c);
    if (lv.length <= 16) {
      const tx = document.createElementNS(ns, "text");
      tx.setAttribute("x", x + 6); tx.setAttribute("y", y + 3);
      tx.textContent = hash.slice(0, 6); svg.appendChild(tx);
    }
  }));
}

async function tick() {
  try {
    const r = await fetch("/dashboard/api/status");
    const s = await r.json();
    $("gw").textContent = `gateway ${s.gateway}`;
    $("height").textContent = s.height;
    $("quorum").textContent = s.quorum ? "yes" : "NO";
    $("committed").textContent = s.committed;
    $("refused").textContent = s.refused;
    $("p50").textContent = s.latency_ms.p50.toFixed(1);
    $("p99").textContent = s.latency_ms.p99.toFixed(1);
    $("tput-now").textContent = `${s.throughput.toFixed(1)} commits/s`;
    $("updated").textContent = "updated " + new Date(s.time * 1000).toLocaleTimeString();
    push(hist.tput, s.throughput); push(hist.p50, s.latency_ms.p50); push(hist.p99, s.latency_ms.p99);
    spark($("tput"), [hist.tput], ["#369"]);
    spark($("lat"), [hist.p50, hist.p99], ["#369", "#c63"]);
    renderNodes(s.nodes);
    renderBlocks(s.blocks);
  } catch (e) {
    $("updated").textContent = "gateway unreachable";
  }
}
tick();
setInterval(tick, 1000);
