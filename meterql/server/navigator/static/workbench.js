// The SQL workbench: the editor, :named parameter inputs, the results grid, the plan, errors
// marked in the editor, cancel and downloads. Queries and plans go through the HTTP API
// (/v1/query, /v1/explain, /v1/queries/{id}/cancel) with the session's CSRF token; every value
// from the server is shown as text (textContent), never as HTML.
import { createEditor, markError, text } from "/static/navigator/vendor/editor.js";
import { Tabulator } from "/static/navigator/vendor/grid.js";

const $ = (id) => document.getElementById(id);
const json = (id) => JSON.parse($(id).textContent);

const state = { params: [], running: null, grid: null, lastRun: null, explainTimer: null };

const view = createEditor($("wb-editor"), {
  doc: json("wb-sql"), schema: json("wb-schema"), functions: json("wb-functions"),
  onRun: () => { run(); }, onChange: () => scheduleParams(),
});

// ---- talking to the server ------------------------------------------------------------------

async function post(url, body, extra = {}) {
  const answer = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: window.meterqlHeaders({ "Content-Type": "application/json", ...extra }),
    body: JSON.stringify(body),
  });
  return answer;
}

async function problemOf(answer) {
  try {
    return await answer.json();
  } catch {
    return { title: `HTTP ${answer.status}`, detail: answer.statusText || "the server failed to answer" };
  }
}

function newQueryId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "wb-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- parameters ----------------------------------------------------------------------------

const TYPES = ["auto", "text", "number", "decimal", "date", "timestamp", "timestamptz", "time"];

function scheduleParams() {
  clearTimeout(state.explainTimer);
  state.explainTimer = setTimeout(() => { refreshParams().catch(() => {}); }, 400);
}

// The query's parameter names, as POST /v1/explain answers them; null when it does not plan.
async function refreshParams() {
  const sql = text(view);
  if (!sql.trim()) { showParams([]); return { names: [], problem: null }; }
  const answer = await post("/v1/explain", { sql });
  if (!answer.ok) return { names: null, problem: await problemOf(answer) };
  const plan = await answer.json();
  showParams(plan.params);
  return { names: plan.params, problem: null, plan: plan.plan };
}

function showParams(names) {
  if (names.join("\n") === state.params.map((p) => p.name).join("\n")) return;  // (keep focus)
  const old = new Map(state.params.map((p) => [p.name, p]));
  const list = $("wb-param-list");
  const kept = [];
  list.replaceChildren();
  names.forEach((name, i) => {
    const row = document.createElement("div");
    row.className = "wb-param";
    const label = document.createElement("label");
    label.htmlFor = `wb-param-${i}`;
    label.textContent = `:${name}`;
    const input = document.createElement("input");
    input.id = `wb-param-${i}`;
    input.dataset.name = name;
    input.placeholder = "NULL when empty";
    const typeLabel = document.createElement("label");
    typeLabel.htmlFor = `wb-param-type-${i}`;
    typeLabel.className = "wb-type-label";
    typeLabel.textContent = "as";
    const select = document.createElement("select");
    select.id = `wb-param-type-${i}`;
    select.setAttribute("aria-label", `type of :${name}`);
    for (const t of TYPES) {
      const option = document.createElement("option");
      option.value = t;
      option.textContent = t;
      select.append(option);
    }
    const before = old.get(name);
    if (before) { input.value = before.input.value; select.value = before.select.value; }
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); run(); }
    });
    row.append(label, input, typeLabel, select);
    list.append(row);
    kept.push({ name, input, select, isNew: before ? before.isNew : true });
  });
  state.params = kept;
  $("wb-params").hidden = names.length === 0;
}

function paramValue(raw, type) {
  if (raw === "") return null;
  switch (type) {
    case "text": return raw;
    case "number": return Number(raw);
    case "auto":
      if (/^-?\d{1,15}$/.test(raw)) return Number(raw);
      if (/^-?\d+\.\d+$/.test(raw)) return { type: "decimal", value: raw };
      if (raw === "true" || raw === "false") return raw === "true";
      return raw;
    default: return { type, value: raw };
  }
}

function paramValues() {
  const values = {};
  for (const p of state.params) values[p.name] = paramValue(p.input.value, p.select.value);
  return values;
}

// ---- showing results, plans and errors --------------------------------------------------------

function status(message) { $("wb-status").textContent = message; }

function clearError() { $("wb-error").hidden = true; }

function showError(problem) {
  const box = $("wb-error");
  box.querySelector(".wb-error-title").textContent = problem.title || "Error";
  const where = problem.line != null && problem.column != null
    ? ` (line ${problem.line}, column ${problem.column})` : "";
  box.querySelector(".wb-error-detail").textContent = (problem.detail || "") + where;
  const hint = box.querySelector(".wb-error-hint");
  hint.textContent = problem.hint ? `Hint: ${problem.hint}` : "";
  hint.hidden = !problem.hint;
  box.hidden = false;
  if (problem.line != null && problem.column != null) {
    const doc = view.state.doc;
    if (problem.line >= 1 && problem.line <= doc.lines) {
      const line = doc.line(problem.line);
      const from = Math.min(line.from + Math.max(problem.column - 1, 0), line.to);
      const word = /^[\w.$"]+/.exec(doc.sliceString(from, line.to));
      markError(view, from, from + (word ? word[0].length : 1));
    }
  }
}

function cellText(cell) {
  const value = cell.getValue();
  const span = document.createElement("span");
  if (value === null || value === undefined) {
    span.className = "wb-null";
    span.textContent = "NULL";
  } else {
    span.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return span;
}

function headerTitle(column) {
  return () => {
    const box = document.createElement("span");
    box.className = "wb-head";
    const name = document.createElement("span");
    name.className = "wb-head-name";
    name.textContent = column.name;
    const type = document.createElement("span");
    type.className = "wb-head-type";
    type.textContent = column.type;
    box.append(name, type);
    return box;
  };
}

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|REAL|DOUBLE|DECIMAL|NUMERIC)/;

function showRows(body, elapsed) {
  const columns = body.columns.map((c, i) => ({
    title: c.name, field: `c${i}`, titleFormatter: headerTitle(c), formatter: cellText,
    hozAlign: NUMERIC.test(c.type) ? "right" : "left", headerTooltip: `${c.name} ${c.type}`,
  }));
  const data = body.rows.map((row, n) => {
    const record = { _n: n + 1 };
    row.forEach((v, i) => { record[`c${i}`] = v; });
    return record;
  });
  if (state.grid) { state.grid.destroy(); state.grid = null; }
  $("wb-results").hidden = false;
  state.grid = new Tabulator($("wb-grid"), {
    data, columns, index: "_n", maxHeight: "min(60vh, 640px)", layout: "fitData",
    renderVertical: "virtual", placeholder: "no rows", columnDefaults: { maxWidth: 480 },
  });
  state.grid.on("tableBuilt", () => {  // keyboard users scroll the rows with the arrow keys
    const holder = $("wb-grid").querySelector(".tabulator-tableholder");
    if (holder) {
      holder.tabIndex = 0;
      holder.setAttribute("role", "region");
      holder.setAttribute("aria-label", "result rows");
    }
  });
  const rows = body.row_count;
  const server = body.seconds != null ? `${(body.seconds * 1000).toFixed(1)} ms` : "";
  $("wb-results").dataset.rows = String(rows);
  status(`${rows.toLocaleString("en")} row${rows === 1 ? "" : "s"} · ${server} on the server, ` +
         `${elapsed.toFixed(0)} ms in all`);
  const notice = $("wb-truncated");
  notice.hidden = !body.truncated;
  notice.textContent = body.truncated
    ? `Truncated: only the first ${rows.toLocaleString("en")} rows are shown. Raise the row ` +
      "limit, or download the result." : "";
}

// ---- actions -----------------------------------------------------------------------------------

function setRunning(id) {
  state.running = id;
  $("wb-run").disabled = id !== null;
  $("wb-cancel").disabled = id === null;
}

async function run() {
  if (state.running) return;
  clearError();
  const sql = text(view);
  if (!sql.trim()) { status("Write a query first."); return; }
  const planned = await refreshParams();
  if (planned.problem) { status(""); showError(planned.problem); return; }
  // A parameter not run with before must be given (or left empty, NULL, on purpose)
  const missing = state.params.filter((p) => p.isNew && p.input.value === "");
  state.params.forEach((p) => { p.isNew = false; });
  if (missing.length) {
    status(`Give a value for ${missing.map((p) => ":" + p.name).join(", ")}, then run again.`);
    missing[0].input.focus();
    return;
  }
  const limit = Math.max(1, parseInt($("wb-limit").value, 10) || 10000);
  const id = newQueryId();
  const params = paramValues();
  setRunning(id);
  const started = performance.now();
  status("Running…");
  const tick = setInterval(() => {
    status(`Running… ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }, 250);
  try {
    const answer = await post("/v1/query", { sql, params, max_rows: limit },
                              { Accept: "application/json", "X-Meterql-Query-Id": id });
    if (!answer.ok) {
      const problem = await problemOf(answer);
      if (problem.title === "QueryCancelledError") {
        status("Cancelled: the query was stopped at its sources.");
      } else {
        status("");
        showError(problem);
      }
      return;
    }
    const body = await answer.json();
    state.lastRun = { sql, params };
    showRows(body, performance.now() - started);
    $("wb-csv").disabled = $("wb-parquet").disabled = false;
  } catch (err) {
    status("");
    showError({ title: "NetworkError", detail: String(err), hint: "check that the server runs" });
  } finally {
    clearInterval(tick);
    setRunning(null);
  }
}

async function cancel() {
  const id = state.running;
  if (!id) return;
  status("Cancelling…");
  // (A query the server has not registered yet answers 404: try again while it runs.)
  for (let attempt = 0; attempt < 20 && state.running === id; attempt += 1) {
    const answer = await fetch(`/v1/queries/${encodeURIComponent(id)}/cancel`, {
      method: "POST", credentials: "same-origin", headers: window.meterqlHeaders(),
    });
    if (answer.ok) return;
    if (answer.status !== 404) { showError(await problemOf(answer)); return; }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

async function explain() {
  clearError();
  const planned = await refreshParams();
  if (planned.problem) { showError(planned.problem); return; }
  if (planned.plan === undefined) { status("Write a query first."); return; }
  $("wb-plan").textContent = planned.plan;
  $("wb-plan-section").hidden = false;
  $("wb-plan").focus();
}

async function download(format) {
  const last = state.lastRun;
  if (!last) return;
  clearError();
  status(`Preparing ${format.toUpperCase()}…`);
  const answer = await post("/workbench/download", { sql: last.sql, params: last.params, format });
  if (!answer.ok) { status(""); showError(await problemOf(answer)); return; }
  const blob = await answer.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `result.${format}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  status(`Downloaded ${answer.headers.get("X-Meterql-Rows") || "?"} rows as ${format.toUpperCase()}.`);
}

$("wb-run").addEventListener("click", () => run());
$("wb-cancel").addEventListener("click", () => cancel());
$("wb-explain").addEventListener("click", () => explain());
$("wb-csv").addEventListener("click", () => download("csv"));
$("wb-parquet").addEventListener("click", () => download("parquet"));
if (text(view).trim()) refreshParams().catch(() => {});
document.body.dataset.workbench = "ready";
