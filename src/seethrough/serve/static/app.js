// seethrough explorer: one page over the JSON API of `seethrough serve` (docs/serve.md).
// Corpus text is untrusted: it only ever reaches the page as textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const fmt = (n) => Number(n).toLocaleString("en-US");
const state = { info: null, find: null, ntdIds: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {}

async function api(path, body) {
  const started = performance.now();
  const options = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json();
  const ms = performance.now() - started;
  if (!response.ok) throw new ApiError(`${data.error || "request failed"} (HTTP ${response.status})`);
  return { data, ms, serverMs: parseFloat(response.headers.get("x-query-ms") || "NaN") };
}

function showError(id, error) {
  const box = $(id);
  if (error) {
    box.textContent = error instanceof ApiError ? error.message : `error: ${error.message || error}`;
    box.hidden = false;
  } else {
    box.hidden = true;
    box.textContent = "";
  }
}

function latency(r) {
  const server = Number.isFinite(r.serverMs) ? ` (query ${r.serverMs.toFixed(1)} ms on the server)` : "";
  return `latency ${r.ms.toFixed(1)} ms${server}`;
}

function query(text, mode) {
  return mode === "ids" ? `ids=${encodeURIComponent(text.trim())}` : `q=${encodeURIComponent(text)}`;
}

function pieces(list, fallback) {
  const out = el("div", { class: "snippet" });
  if (!list) { out.textContent = fallback || ""; return out; }
  for (const piece of list) {
    if (piece.clause === null || piece.clause === undefined) out.append(document.createTextNode(piece.text));
    else out.append(el("mark", { class: `c${piece.clause % 4}`, text: piece.text }));
  }
  return out;
}

function docLink(doc) {
  return el("a", { href: `#document/${doc}`, "data-doc": String(doc), text: `doc ${doc}`,
                   onclick: (e) => { e.preventDefault(); openDocument(doc); } });
}

function matchRow(m) {
  const meta = Object.keys(m.metadata || {}).length ? ` ${JSON.stringify(m.metadata)}` : "";
  return el("li", { class: "match" },
    el("div", { class: "where" }, docLink(m.doc), ` @ token ${m.position}${meta}`),
    pieces(m.pieces, m.snippet));
}

// ---- tabs ---------------------------------------------------------------------------------------
function showPanel(name) {
  for (const button of document.querySelectorAll("#tabs button"))
    button.classList.toggle("active", button.dataset.panel === name);
  for (const panel of document.querySelectorAll(".panel"))
    panel.classList.toggle("active", panel.id === `panel-${name}`);
}

// ---- count --------------------------------------------------------------------------------------
async function runCount() {
  showError("count-error", null);
  try {
    const r = await api(`/api/count?${query($("count-q").value, $("count-mode").value)}`);
    $("count-value").textContent = fmt(r.data.count);
    const w = $("count-withheld");
    w.hidden = !r.data.withheld;
    w.textContent = r.data.withheld ? `${fmt(r.data.withheld)} of them in withheld documents (counted, never shown)` : "";
    $("count-latency").textContent = `${latency(r)}; ${r.data.ids.length} token(s) of a corpus of ${fmt(state.info.tokens)} tokens`;
    const rows = $("count-tokens");
    rows.replaceChildren(...r.data.ids.map((id, i) =>
      el("tr", {}, el("td", { class: "num", text: i }), el("td", { text: JSON.stringify((r.data.tokens || [])[i] ?? "") }),
         el("td", { class: "num", text: id }))));
    $("count-result").hidden = false;
  } catch (error) { $("count-result").hidden = true; showError("count-error", error); }
}

// ---- find ---------------------------------------------------------------------------------------
async function runFind(offset) {
  showError("find-error", null);
  const size = parseInt($("find-size").value, 10);
  const context = parseInt($("find-context").value, 10);
  const q = $("find-q").value;
  try {
    const r = await api(`/api/find?q=${encodeURIComponent(q)}&limit=${size}&offset=${offset}&context=${context}`);
    const d = r.data;
    state.find = { q, size, context, offset, count: d.count, withheld: d.withheld };
    const visible = d.count - d.withheld;
    const shown = d.matches.length ? `showing ${fmt(offset + 1)}–${fmt(offset + d.matches.length)}` : "none on this page";
    const hidden = d.withheld ? ` (${fmt(d.withheld)} in withheld documents, not listed)` : "";
    $("find-summary").textContent = `${fmt(d.count)} occurrence(s)${hidden}; ${shown} of ${fmt(visible)}, in corpus order; ${latency(r)}`;
    $("find-rows").setAttribute("start", String(offset + 1));
    $("find-rows").replaceChildren(...d.matches.map(matchRow));
    $("find-pager").hidden = false;
    $("find-prev").disabled = offset === 0;
    $("find-next").disabled = offset + size >= visible;
  } catch (error) { $("find-rows").replaceChildren(); $("find-summary").textContent = ""; showError("find-error", error); }
}

async function allFound() {
  // every visible match up to the export cap, page by page (the server caps a page at max_find_limit)
  const f = state.find, limits = state.info.limits;
  const cap = exportCap(), rows = [];
  for (let offset = 0; offset < Math.min(cap, f.count - f.withheld); offset += limits.max_find_limit) {
    const size = Math.min(limits.max_find_limit, cap - offset);
    const r = await api(`/api/find?q=${encodeURIComponent(f.q)}&limit=${size}&offset=${offset}&context=${f.context}`);
    rows.push(...r.data.matches);
    if (r.data.matches.length < size) break;
  }
  return rows;
}

function exportCap() { return Math.min(10 * state.info.limits.max_find_limit, state.info.limits.max_find_offset); }

function download(name, type, text) {
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

function csvCell(value) {
  const text = String(value ?? "");
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

async function exportFind(kind) {
  showError("find-error", null);
  try {
    const rows = await allFound();
    const f = state.find;
    if (kind === "json") {
      download("find.json", "application/json", JSON.stringify({ query: f.q, count: f.count, withheld: f.withheld, matches: rows }, null, 1));
    } else {
      const lines = [["doc", "position", "left", "match", "right", "metadata"].join(",")];
      for (const m of rows) {
        const parts = m.pieces || [{ text: m.snippet, clause: 0 }];
        const at = parts.findIndex((p) => p.clause !== null);
        const left = parts.slice(0, at).map((p) => p.text).join("");
        const right = parts.slice(at + 1).map((p) => p.text).join("");
        lines.push([m.doc, m.position, left, parts[at].text, right, JSON.stringify(m.metadata)].map(csvCell).join(","));
      }
      download("find.csv", "text/csv", lines.join("\n") + "\n");
    }
  } catch (error) { showError("find-error", error); }
}

// ---- next tokens --------------------------------------------------------------------------------
async function runNtd(ids) {
  showError("ntd-error", null);
  try {
    const path = ids ? `/api/ntd?ids=${ids.join(",")}` : `/api/ntd?q=${encodeURIComponent($("ntd-q").value)}`;
    const r = await api(path);
    const d = r.data;
    state.ntdIds = d.ids;
    const hidden = d.withheld ? `; ${fmt(d.withheld)} in withheld documents (their next tokens are left out)` : "";
    $("ntd-summary").textContent = `prompt occurs ${fmt(d.prompt_count)} time(s), ${fmt(d.end_of_document)} at a ` +
      `document end${hidden}; ${fmt(d.next.length)} distinct next token(s)${d.next.length > 50 ? ", the 50 most frequent shown" : ""}; ${latency(r)}`;
    const top = d.next.length ? d.next[0].prob : 1;
    $("ntd-rows").replaceChildren(...d.next.slice(0, 50).map((row) =>
      el("tr", { "data-id": String(row.id), "data-token": row.token ?? "", onclick: () => appendToken(row) },
        el("td", { text: JSON.stringify(row.token ?? "") }), el("td", { class: "num", text: row.id }),
        el("td", { class: "num", text: fmt(row.count) }),
        el("td", { class: "num" }, row.prob.toFixed(4), bar(80 * row.prob / top)))));
  } catch (error) { $("ntd-rows").replaceChildren(); $("ntd-summary").textContent = ""; showError("ntd-error", error); }
}

function bar(width) {
  const node = el("span", { class: "bar" });
  node.style.width = `${Math.round(width)}px`;  // CSSOM, which the page's CSP allows (a style attribute it would not)
  return node;
}

function appendToken(row) {
  const box = $("ntd-q"), token = row.token ?? "";
  box.value = box.value && !/^\s/.test(token) ? `${box.value} ${token}` : box.value + token;
  runNtd([...(state.ntdIds || []), row.id]);  // the query goes by ids: exact whatever the tokenizer's spacing
}

// ---- boolean search -----------------------------------------------------------------------------
async function runSearch() {
  showError("search-error", null);
  try {
    const q = encodeURIComponent($("search-q").value);
    const r = await api(`/api/search?q=${q}&window=${parseInt($("search-window").value, 10)}&limit=${parseInt($("search-limit").value, 10)}`);
    const d = r.data;
    const hidden = d.withheld ? ` (${fmt(d.withheld)} in withheld documents, not listed)` : "";
    $("search-summary").textContent = `${fmt(d.count)} match(es) in ${fmt(d.documents)} document(s)${hidden}; showing ` +
      `the first ${d.matches.length} in corpus order; exact; ${latency(r)}`;
    $("search-rows").replaceChildren(...d.matches.map(matchRow));
  } catch (error) { $("search-rows").replaceChildren(); $("search-summary").textContent = ""; showError("search-error", error); }
}

// ---- document -----------------------------------------------------------------------------------
async function openDocument(doc) {
  showPanel("document");
  $("doc-id").value = String(doc);
  showError("doc-error", null);
  try {
    const r = await api(`/api/document/${encodeURIComponent(String(doc).trim())}`);
    const d = r.data;
    const meta = Object.keys(d.metadata || {}).length ? ` ${JSON.stringify(d.metadata)}` : "";
    const source = d.path ? `; from ${d.path}${d.line !== null ? ` line ${d.line}` : ""}` : "";
    $("doc-meta").textContent = `document ${d.doc}: ${fmt(d.token_ids.length)} tokens${meta}${source}`;
    $("doc-text").textContent = d.text ?? d.token_ids.join(" ");
    $("doc-view").hidden = false;
  } catch (error) { $("doc-view").hidden = true; showError("doc-error", error); }
}

// ---- traces: spans and documents filter each other (OLMoTrace's two-way selection) ---------------
function renderTrace(result, textBox, docsBox, statusBox) {
  const docs = new Map();  // doc -> {doc, metadata, best, snippets: [{span, text, position}], spans: Set}
  result.spans.forEach((span, i) => {
    for (const d of span.documents) {
      if (!docs.has(d.doc)) docs.set(d.doc, { doc: d.doc, metadata: d.metadata, best: -Infinity, snippets: [], spans: new Set() });
      const card = docs.get(d.doc);
      card.best = Math.max(card.best, d.bm25);
      card.snippets.push({ span: i, text: d.snippet, position: d.position });
      card.spans.add(i);
    }
  });
  const ordered = [...docs.values()].sort((a, b) => b.best - a.best || a.doc - b.doc);
  const top = ordered.length ? Math.max(ordered[0].best, 1e-9) : 1;
  const view = { span: null, doc: null };

  const marks = [];
  textBox.replaceChildren(...result.pieces.map((piece) => {
    if (!piece.spans.length) return document.createTextNode(piece.text);
    const mark = el("mark", { "data-spans": piece.spans.join(","), text: piece.text,
                              title: piece.spans.map((i) => `span ${i}: ${fmt(result.spans[i].count)} occurrence(s)`).join("; "),
                              onclick: () => { view.span = view.span === piece.spans[0] ? null : piece.spans[0]; view.doc = null; update(); } });
    marks.push(mark);
    return mark;
  }));

  const cards = ordered.map((card) => {
    const relevance = card.best / top >= 0.66 ? "high" : card.best / top >= 0.33 ? "medium" : "low";
    const locate = el("button", { type: "button", class: "locate", text: "locate spans",
                                  onclick: () => { view.doc = view.doc === card.doc ? null : card.doc; update(); } });
    const node = el("div", { class: `doc-card ${relevance}`, "data-doc": String(card.doc), "data-spans": [...card.spans].join(",") },
      el("div", { class: "where" }, docLink(card.doc), ` relevance ${relevance}`,
         Object.keys(card.metadata || {}).length ? ` ${JSON.stringify(card.metadata)}` : ""),
      ...card.snippets.map((s) => boldSpan(s.text || "", result.spans[s.span].text || "")),
      locate);
    return { card, node, locate };
  });
  docsBox.replaceChildren(...(cards.length ? cards.map((c) => c.node) :
    [el("p", { class: "hint", text: "No documents: no span of this text is long enough and found in the (visible) data." })]));

  function update() {
    for (const mark of marks) {
      const spans = mark.dataset.spans.split(",").map(Number);
      const inDoc = view.doc === null || spans.some((i) => docs.get(view.doc).spans.has(i));
      mark.classList.toggle("dim", !inDoc);
      mark.classList.toggle("selected", view.span !== null && spans.includes(view.span));
    }
    let shown = 0;
    for (const c of cards) {
      const visible = view.span === null || c.card.spans.has(view.span);
      c.node.hidden = !visible;
      shown += visible ? 1 : 0;
      c.node.classList.toggle("located", view.doc === c.card.doc);
      c.locate.textContent = view.doc === c.card.doc ? "show all spans" : "locate spans";
      c.locate.disabled = view.span !== null;
    }
    const clear = el("button", { type: "button", class: "clear", text: "clear selection",
                                 onclick: () => { view.span = null; view.doc = null; update(); } });
    if (view.span !== null) {
      statusBox.replaceChildren(`${shown} document(s) containing span ${JSON.stringify(result.spans[view.span].text)} `, clear);
    } else if (view.doc !== null) {
      statusBox.replaceChildren(`the spans found in doc ${view.doc} `, clear);
    } else {
      statusBox.replaceChildren(`${result.spans.length} span(s) in ${cards.length} document(s); click a span or a document to filter`);
    }
  }
  update();
}

function boldSpan(snippet, span) {
  const at = span ? snippet.indexOf(span) : -1;
  if (at < 0) return el("div", { class: "snippet", text: snippet });
  return el("div", { class: "snippet" }, snippet.slice(0, at), el("b", { text: span }), snippet.slice(at + span.length));
}

function coverage(result) {
  const covered = new Set();
  for (const s of result.spans) for (let i = s.start; i < s.end; i++) covered.add(i);
  return result.tokens ? covered.size / result.tokens : 0;
}

async function runCheck() {
  showError("check-error", null);
  const text = $("check-text").value;
  try {
    const r = await api("/api/trace", { text, min_length: parseInt($("check-min").value, 10), span_density: 1 });
    const d = r.data;
    const found = d.novelty.found_share_by_n;
    const shares = ["1", "2", "4", "8", "16"].filter((n) => n in found).map((n) => `n=${n}: ${(100 * found[n]).toFixed(0)}%`).join(", ");
    $("check-coverage").textContent = `${(100 * coverage(d)).toFixed(0)}% of its ${d.tokens} tokens lie in spans of at least ` +
      `${$("check-min").value} tokens found verbatim in the data; longest copied span ${d.novelty.longest_copied_span} ` +
      `token(s); n-grams found: ${shares}; ${latency(r)}`;
    renderTrace(d, $("check-highlight"), $("check-docs"), $("check-status"));
    $("check-result").hidden = false;
    if (state.info.run) {
      const m = (await api("/api/membership", { text })).data;
      const names = ["loss", "zlib", "min_k", "min_k_plus_plus", "reference", "index"].filter((n) => n in m);
      $("check-signals").replaceChildren(
        ...names.map((n) => el("tr", {}, el("td", { text: n }), el("td", { class: "num", text: m[n] === null ? "n/a" : Number(m[n]).toFixed(4) }))),
        el("tr", {}, el("td", { text: "whole text occurs" }), el("td", { class: "num", text: `${fmt(m.whole_text_count)} time(s)` })),
        el("tr", {}, el("td", { text: "covered by found spans (any length)" }), el("td", { class: "num", text: `${(100 * m.covered).toFixed(0)}%` })));
      $("check-membership").hidden = false;
    }
  } catch (error) { $("check-result").hidden = true; showError("check-error", error); }
}

async function runGenerate() {
  showError("gen-error", null);
  try {
    const r = await api("/api/generate", { prompt: $("gen-prompt").value, max_new_tokens: parseInt($("gen-tokens").value, 10),
                                           span_density: parseFloat($("gen-density").value), min_length: parseInt($("gen-min").value, 10) });
    const d = r.data;
    $("gen-summary").textContent = `the model wrote ${d.tokens} token(s) after ${JSON.stringify(d.prompt)}; longest copied span ` +
      `${d.novelty.longest_copied_span} token(s); ${latency(r)}`;
    renderTrace(d, $("gen-text"), $("gen-docs"), $("gen-status"));
    $("gen-result").hidden = false;
  } catch (error) { $("gen-result").hidden = true; showError("gen-error", error); }
}

// ---- start --------------------------------------------------------------------------------------
function on(id, event, handler) {
  $(id).addEventListener(event, (e) => { e.preventDefault(); handler(); });
}

async function start() {
  for (const button of document.querySelectorAll("#tabs button"))
    button.addEventListener("click", () => { showPanel(button.dataset.panel); history.replaceState(null, "", `#${button.dataset.panel}`); });
  on("count-form", "submit", runCount);
  on("find-form", "submit", () => runFind(0));
  on("find-prev", "click", () => runFind(Math.max(0, state.find.offset - state.find.size)));
  on("find-next", "click", () => runFind(state.find.offset + state.find.size));
  on("find-export-json", "click", () => exportFind("json"));
  on("find-export-csv", "click", () => exportFind("csv"));
  on("ntd-form", "submit", () => runNtd(null));
  on("search-form", "submit", runSearch);
  on("doc-form", "submit", () => openDocument($("doc-id").value));
  on("check-form", "submit", runCheck);
  on("gen-form", "submit", runGenerate);
  try {
    const info = (await api("/api/info")).data;
    state.info = info;
    const run = info.run ? `; model: ${info.run}` : "; no model (start with --run for membership and generation)";
    const withheld = info.withheld_documents ? `; ${fmt(info.withheld_documents)} document(s) withheld (counted, never shown)` : "";
    $("info").textContent = `${info.corpus}: ${fmt(info.documents)} documents, ${fmt(info.tokens)} tokens in ${info.shards} shard(s)${run}${withheld}`;
    $("find-export-cap").textContent = fmt(exportCap());
    $("gen-unavailable").hidden = Boolean(info.run);
    $("gen-form").hidden = !info.run;
    document.body.dataset.ready = "1";
  } catch (error) { $("info").textContent = `cannot reach the server: ${error.message}`; }
  route();
  window.addEventListener("hashchange", route);  // #document/N and #PANEL are permalinks
}

function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith("document/")) openDocument(hash.slice(9));
  else if (document.getElementById(`panel-${hash}`)) showPanel(hash);
}

start();
