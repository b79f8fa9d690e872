// Aggregates: the draft editor (checked as it is typed, the error's position marked), the dry
// run's diff, and evaluation with a results table and a chart. Every value goes in as text.
import { createEditor, markError, text } from "./vendor/editor.js";
import { Chart } from "./vendor/chart.js";

const $ = (id) => document.getElementById(id);
const PAGE_ROWS = 100; // rows of a result table shown at a time

async function post(url, body) {
  const answer = await fetch(url, {
    method: "POST", body: JSON.stringify(body), credentials: "same-origin",
    headers: window.meterqlHeaders({ "Content-Type": "application/json", Accept: "application/json" }),
  });
  let data = null;
  try { data = await answer.json(); } catch (e) { data = { detail: `the server answered ${answer.status}` }; }
  return { ok: answer.ok, status: answer.status, data };
}

function el(tag, textContent, cls) {
  const node = document.createElement(tag);
  if (textContent !== undefined && textContent !== null) node.textContent = String(textContent);
  if (cls) node.className = cls;
  return node;
}

// A problem (RFC 9457) as text: its detail, then its hint.
function showProblem(box, problem) {
  box.replaceChildren(el("p", problem.detail || problem.title || "failed", "error"));
  if (problem.hint) box.append(el("p", `Hint: ${problem.hint}`, "muted"));
  if (Array.isArray(problem.detail)) { // a request FastAPI refused: its first complaint
    box.firstChild.textContent = problem.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  box.hidden = false;
}

function periodBody(form) {
  const data = new FormData(form);
  const customers = String(data.get("customers") || "").split(/[\n,]/).map((c) => c.trim()).filter(Boolean);
  const body = { from: data.get("from"), to: data.get("to"), tz: String(data.get("tz") || "UTC").trim() };
  if (data.get("window")) body.window = data.get("window");
  if (customers.length) body.customers = customers;
  return body;
}

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|DECIMAL|DOUBLE|REAL|FLOAT|NUMERIC)/;

// A result table a page at a time, with its pager after it (rowCount: the rows there are, of
// which the server sent the first rows.length).
function fillTable(table, columns, rows, rowCount, whole) {
  const numeric = (c) => NUMERIC.test(c.type || "");
  const head = el("thead"); const tr = el("tr");
  for (const c of columns) {
    const th = el("th", c.name); th.scope = "col";
    if (c.type) th.title = c.type;
    if (numeric(c)) th.className = "num";
    tr.append(th);
  }
  head.append(tr);
  const body = el("tbody");
  table.replaceChildren(head, body);
  let pager = table.parentElement.nextElementSibling;
  if (!pager || !pager.classList.contains("pager")) {
    pager = el("div", null, "pager");
    table.parentElement.after(pager);
  }
  const show = (first) => {
    body.replaceChildren(...rows.slice(first, first + PAGE_ROWS).map((row) => {
      const r = el("tr");
      row.forEach((v, i) => r.append(el("td", v === null ? "" : v, numeric(columns[i]) ? "num" : null)));
      return r;
    }));
    pager.replaceChildren();
    if (rows.length > PAGE_ROWS) {
      const back = el("button", "Previous", "secondary"); back.type = "button";
      const next = el("button", "Next", "secondary"); next.type = "button";
      back.disabled = first === 0; next.disabled = first + PAGE_ROWS >= rows.length;
      back.addEventListener("click", () => show(Math.max(0, first - PAGE_ROWS)));
      next.addEventListener("click", () => show(first + PAGE_ROWS));
      pager.append(back, el("span", ` rows ${first + 1}–${Math.min(rows.length, first + PAGE_ROWS)} of ${rowCount} `), next);
    }
    if (rowCount > rows.length) {
      pager.append(el("p", `The first ${rows.length} of ${rowCount} rows are here; ${whole} gives them all.`, "muted"));
    }
  };
  show(0);
}

// ---- the draft editor ------------------------------------------------------------------------
function draftPage() {
  const parent = $("editor");
  const status = $("check");
  const goto = $("goto-error");
  let mark = null; // {from, to}
  let seq = 0;
  let timer = null;

  const view = createEditor(parent, {
    doc: JSON.parse($("draft-text").textContent),
    onRun: () => $("dry-run").requestSubmit(),
    onChange: () => {
      seq += 1; // an answer about older text is dropped
      status.dataset.state = "pending";
      clearMark(); clearTimeout(timer); timer = setTimeout(check, 350);
    },
  });

  // The error's span, drawn over the editor (kept in place as it scrolls).
  const overlay = el("div", null, "error-mark");
  overlay.hidden = true;
  overlay.setAttribute("aria-hidden", "true");
  parent.append(overlay);
  view.contentDOM.setAttribute("aria-describedby", "check");
  view.scrollDOM.addEventListener("scroll", drawMark);
  window.addEventListener("resize", drawMark);

  function clearMark() {
    mark = null; overlay.hidden = true; goto.hidden = true;
    view.contentDOM.removeAttribute("aria-invalid");
  }

  function drawMark() {
    if (!mark) return;
    const a = view.coordsAtPos(mark.from); const b = view.coordsAtPos(mark.to, -1);
    if (!a || !b) { overlay.hidden = true; return; }
    const box = parent.getBoundingClientRect();
    overlay.style.left = `${a.left - box.left}px`;
    overlay.style.top = `${a.top - box.top}px`;
    overlay.style.width = `${Math.max(6, (b.top === a.top ? b.right : a.left + 8) - a.left)}px`;
    overlay.style.height = `${a.bottom - a.top}px`;
    overlay.hidden = false;
  }

  // Where a problem's line and column are in the text, and the word there.
  function place(problem) {
    if (!problem.line) return null;
    const doc = view.state.doc;
    if (problem.line > doc.lines) return null;
    const line = doc.line(problem.line);
    const from = Math.min(line.to, line.from + Math.max(0, (problem.column || 1) - 1));
    let to = from;
    while (to < line.to && /[\w$."]/.test(doc.sliceString(to, to + 1))) to += 1;
    return { from, to: Math.max(to, Math.min(line.to, from + 1)) };
  }

  function showError(problem) {
    status.replaceChildren(el("span", "✗ ", "error"), el("span", problem.detail || problem.title, "error"));
    if (problem.hint) status.append(el("span", ` Hint: ${problem.hint}`, "muted"));
    status.dataset.state = "invalid";
    view.contentDOM.setAttribute("aria-invalid", "true");
    mark = place(problem);
    if (mark) {
      overlay.dataset.text = view.state.doc.sliceString(mark.from, mark.to);
      overlay.title = problem.detail || "";
      status.append(el("span", ` (line ${problem.line}, column ${problem.column || 1})`, "muted"));
      goto.hidden = false;
      drawMark();
    }
  }

  async function check() {
    const mine = ++seq;
    status.dataset.state = "checking";
    const answer = await post("/aggregates/check", { text: text(view) });
    if (mine !== seq) return; // typed since
    if (answer.ok) {
      clearMark();
      status.replaceChildren(el("span", `✓ Valid: aggregate ${answer.data.name}`, "ok"));
      status.dataset.state = "valid";
    } else {
      clearMark();
      showError(answer.data);
    }
    return answer.ok;
  }

  goto.addEventListener("click", () => { if (mark) markError(view, mark.from, mark.to); });

  const form = $("dry-run");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const errors = $("dry-error"); errors.hidden = true;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true; button.textContent = "Running…";
    try {
      const answer = await post("/aggregates/dry-run", { text: text(view), ...periodBody(form) });
      if (!answer.ok) {
        showProblem(errors, answer.data);
        $("dry-result").hidden = true;
        if (answer.data.line) showError(answer.data);
        return;
      }
      showPlan(answer.data, form);
    } finally {
      button.disabled = false; button.textContent = "Dry run";
    }
  });

  const save = $("save");
  if (save) {
    save.addEventListener("click", async () => {
      const said = $("save-status");
      said.replaceChildren(el("span", "Saving…", "muted"));
      const answer = await post("/aggregates/save", { text: text(view) });
      if (!answer.ok) {
        said.replaceChildren(el("span", answer.data.detail || "not saved", "error"));
        if (answer.data.hint) said.append(el("span", ` Hint: ${answer.data.hint}`, "muted"));
        if (answer.data.line) showError(answer.data);
        return;
      }
      window.location.assign(answer.data.url);
    });
  }
  check();
}

function signed(value) {
  const text = String(value);
  return text.startsWith("-") || text === "0" ? text : `+${text}`;
}

function showPlan(plan, form) {
  const s = plan.summary;
  const box = $("dry-summary");
  const against = plan.against ? `version ${plan.against}` : "nothing (a new aggregate)";
  const period = periodBody(form);
  const lines = [el("p", `Dry run of ${plan.name} against ${against}, [${period.from}, ${period.to}) in ${plan.tz}.`)];
  const changes = s.added + s.changed + s.removed;
  if (!changes) {
    lines.push(el("p", `No changes: the draft gives the same ${s.unchanged} rows as ${against}.`, "ok"));
  } else {
    const plural = s.customers_changed === 1 ? "customer" : "customers";
    const p1 = el("p"); p1.dataset.summary = "customers";
    p1.append(el("strong", `${s.customers_changed} ${plural} changed`),
              el("span", `; ${s.added} to add, ${s.changed} to change, ${s.removed} to remove, ${s.unchanged} unchanged.`));
    const p2 = el("p"); p2.dataset.summary = "total";
    p2.append(el("strong", "Total quantity: "), el("span", `${s.current_total} → ${s.draft_total} `),
              el("span", `(delta ${signed(s.delta)})`, Number(s.delta) < 0 ? "error" : "ok"));
    lines.push(p1, p2);
  }
  box.replaceChildren(...lines);
  fillTable($("dry-table"), plan.columns, plan.rows, plan.row_count,
            "meterql aggregate dry-run --format csv");
  $("dry-table").hidden = !plan.rows.length;
  $("dry-result").hidden = false;
}

// ---- a version's page: evaluation --------------------------------------------------------------
let chart = null;

function aggregatePage() {
  const form = $("evaluate");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const errors = $("eval-error"); errors.hidden = true;
    const status = $("eval-status");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true; status.textContent = "Evaluating…";
    try {
      const body = { ...periodBody(form), version: Number(form.dataset.version) };
      const answer = await post(`/aggregates/${encodeURIComponent(form.dataset.name)}/evaluate`, body);
      if (!answer.ok) {
        status.textContent = "";
        showProblem(errors, answer.data);
        $("eval-result").hidden = true;
        return;
      }
      const ev = answer.data.evaluation;
      status.replaceChildren(el("span", `${answer.data.row_count} rows in ${(ev.seconds * 1000).toFixed(1)} ms (${body.tz}); result hash `),
                             el("code", ev.result_hash, "hash"));
      status.dataset.hash = ev.result_hash;
      fillTable($("eval-table"), answer.data.columns, answer.data.rows, answer.data.row_count,
                "meterql aggregate evaluate --format csv");
      $("eval-result").hidden = false;
      draw(answer.data);
      document.body.dispatchEvent(new CustomEvent("evaluated"));
    } finally {
      button.disabled = false;
    }
  });
}

function draw(result) {
  const { labels, series, customers } = result.chart;
  const note = $("chart-note");
  note.textContent = customers > series.length
    ? `The chart shows the ${series.length} customers with the largest totals of ${customers}; the table lists all.` : "";
  const perPeriod = labels.length > 1;
  const datasets = perPeriod
    ? series.map((s) => ({ label: s.name, data: s.values }))
    : [{ label: result.unit ? `quantity (${result.unit})` : "quantity", data: series.map((s) => s.values[0]) }];
  if (chart) chart.destroy();
  chart = new Chart($("eval-chart"), {
    type: perPeriod ? "line" : "bar",
    data: { labels: perPeriod ? labels : series.map((s) => s.name), datasets },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
               scales: { y: { beginAtZero: true } },
               plugins: { legend: { display: perPeriod } } },
  });
}

if ($("editor")) draftPage();
if ($("evaluate")) aggregatePage();
