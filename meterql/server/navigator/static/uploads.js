// The Uploads page: a CSV chosen or dropped, previewed by the API's upload route with
// dry_run=true (the load's own reader, nothing stored), then stored by the same route. Every
// value is written with textContent.
const form = document.getElementById("upload-form");
const input = document.getElementById("upload-file");
const zone = document.getElementById("drop-zone");
const table = document.getElementById("upload-table");
const mode = document.getElementById("upload-mode");
const key = document.getElementById("upload-key");
const previewButton = document.getElementById("preview-button");
const storeButton = document.getElementById("store-button");
const errorBox = document.getElementById("upload-error");
let file = null;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function fillRejected(tbody, rejected) {
  tbody.replaceChildren(...rejected.map((r) => {
    const tr = el("tr");
    tr.append(el("td", r.line ?? "", "num"), el("td", r.column ?? ""), el("td", r.value ?? ""),
              el("td", r.reason));
    return tr;
  }));
}

function showError(problem) {
  const text = problem.detail || problem.title || "the request failed";
  errorBox.replaceChildren(el("strong", text));
  if (problem.hint) errorBox.append(el("p", problem.hint, "muted"));
  if (Array.isArray(problem.rows) && problem.rows.length) {
    const list = el("ul");
    for (const r of problem.rows) list.append(el("li", `line ${r.line ?? "?"}: ${r.reason}`));
    errorBox.append(list);
  }
}

function choose(chosen) {
  file = chosen;
  document.getElementById("file-name").textContent = file ? `${file.name} (${file.size.toLocaleString()} bytes)` : "";
  if (file && !table.value) {
    table.value = file.name.replace(/\.[^.]*$/, "").toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^([0-9])/, "_$1");
  }
  storeButton.disabled = true;
  document.getElementById("result").hidden = true;
  if (file) preview();
}

function tableOk() {
  if (table.checkValidity()) return true;
  showError({ detail: `'${table.value}' is not a valid table name`,
              hint: "use a lowercase identifier: letters, digits and _" });
  table.focus();
  return false;
}

async function answer(response) {
  const body = await response.json().catch(() => ({ title: `HTTP ${response.status}` }));
  if (!response.ok) { showError(body); return null; }
  errorBox.replaceChildren();
  return body;
}

async function preview() {
  if (!file) { showError({ detail: "choose a CSV file first" }); return; }
  if (!tableOk()) return;
  const data = new FormData();
  data.append("file", file);
  const params = new URLSearchParams({ mode: mode.value, dry_run: "true" });
  previewButton.disabled = true;
  try {
    const body = await answer(await fetch(
      `/v1/tables/${encodeURIComponent(table.value)}/upload?${params}`,
      { method: "POST", body: data, headers: window.meterqlHeaders(), credentials: "same-origin" }));
    if (!body) return;
    const columns = Object.keys(body.columns);
    document.getElementById("preview-summary").textContent =
      `${body.good.toLocaleString()} row${body.good === 1 ? "" : "s"} fit, ` +
      `${body.rejected.length.toLocaleString()} rejected; into ${body.table}` +
      (body.exists ? ` (which exists: ${body.mode})` : " (a new table)") + ". Nothing is stored yet.";
    document.querySelector("#preview-types tbody").replaceChildren(...columns.map((c) => {
      const tr = el("tr");
      tr.append(el("td", c), el("td", body.columns[c]));
      return tr;
    }));
    const head = el("tr");
    head.append(...columns.map((c) => el("th", c)));
    document.querySelector("#preview-rows thead").replaceChildren(head);
    document.querySelector("#preview-rows tbody").replaceChildren(...body.rows.map((row) => {
      const tr = el("tr");
      tr.append(...columns.map((c) => el("td", row[c] ?? "")));
      return tr;
    }));
    fillRejected(document.querySelector("#preview-rejected tbody"), body.rejected);
    document.getElementById("preview-rejected-block").hidden = body.rejected.length === 0;
    document.getElementById("preview").hidden = false;
    storeButton.disabled = body.good === 0;
    storeButton.textContent = body.rejected.length
      ? `Store ${body.good.toLocaleString()} good row${body.good === 1 ? "" : "s"}` : "Store";
  } finally {
    previewButton.disabled = false;
  }
}

async function store() {
  if (!file || !tableOk()) return;
  const params = new URLSearchParams({ mode: mode.value, keep_good: "true" });
  if (mode.value === "upsert") {
    for (const k of key.value.split(",").map((s) => s.trim()).filter(Boolean)) params.append("key", k);
  }
  const data = new FormData();
  data.append("file", file);
  storeButton.disabled = true;
  const body = await answer(await fetch(
    `/v1/tables/${encodeURIComponent(table.value)}/upload?${params}`,
    { method: "POST", body: data, headers: window.meterqlHeaders(), credentials: "same-origin" }));
  if (!body) { storeButton.disabled = false; return; }
  const rejected = body.rejected || [];
  document.getElementById("result-summary").textContent = body.status === "unchanged"
    ? body.note
    : `${body.rows.toLocaleString()} row${body.rows === 1 ? "" : "s"} stored in ${body.table} ` +
      `(${body.mode}), ${rejected.length.toLocaleString()} rejected.`;
  const list = document.getElementById("result-rejected");
  fillRejected(list.querySelector("tbody"), rejected);
  list.hidden = rejected.length === 0;
  document.getElementById("result").hidden = false;
  document.getElementById("preview").hidden = true;
  document.body.dispatchEvent(new Event("meterql:stored"));  // htmx reloads the table list
}

input.addEventListener("change", () => choose(input.files[0] || null));
for (const name of ["dragenter", "dragover"]) {
  zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  zone.addEventListener(name, () => zone.classList.remove("over"));
}
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  const dropped = event.dataTransfer && event.dataTransfer.files[0];
  if (dropped) {
    try { input.files = event.dataTransfer.files; } catch { /* a browser that refuses keeps its own */ }
    choose(dropped);
  }
});
mode.addEventListener("change", () => {
  document.getElementById("key-field").hidden = mode.value !== "upsert";
  if (file) preview();
});
previewButton.addEventListener("click", preview);
storeButton.addEventListener("click", store);
form.addEventListener("submit", (event) => { event.preventDefault(); preview(); });
