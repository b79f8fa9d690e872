// Sources page: "Sync now" posts to /v1/sync asking for NDJSON and shows each progress line
// as it arrives, then the run's outcome (an error with its hint), then the source's card again
// (its new watermarks). Every value goes in with textContent.
function line(list, text, cls) {
  const item = document.createElement("li");
  item.textContent = text;
  if (cls) item.className = cls;
  list.appendChild(item);
  return item;
}

function problemText(error) {
  return error.detail + (error.hint ? ` (${error.hint})` : "");
}

async function syncNow(button) {
  const name = button.dataset.source;
  const box = document.getElementById(button.dataset.progress);
  box.replaceChildren();
  const list = document.createElement("ol");
  list.className = "sync-log";
  box.appendChild(list);
  button.disabled = true;
  const tables = new Map();
  let failed = false;
  try {
    const answer = await fetch("/v1/sync", {
      method: "POST",
      headers: window.meterqlHeaders({ "Content-Type": "application/json", Accept: "application/x-ndjson" }),
      body: JSON.stringify({ sources: [name] }),
    });
    if (!answer.ok) {
      const problem = await answer.json().catch(() => ({ detail: answer.statusText }));
      line(list, problemText(problem), "error");
      failed = true;
      return;
    }
    line(list, `syncing ${name}…`, "muted");
    const reader = answer.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (value) pending += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = pending.indexOf("\n")) >= 0) {
        const text = pending.slice(0, cut).trim();
        pending = pending.slice(cut + 1);
        if (text) failed = show(list, tables, JSON.parse(text)) || failed;
      }
      if (done) break;
    }
  } catch (err) {
    line(list, `the sync stopped: ${err}`, "error");
    failed = true;
  } finally {
    button.disabled = false;
    if (!failed) refreshCard(name);
  }
}

// One NDJSON line shown; true when it reports a failure.
function show(list, tables, event) {
  if (event.event === "progress") {
    const text = `${event.table}: ${event.rows} rows`;
    if (tables.has(event.table)) tables.get(event.table).textContent = text;
    else tables.set(event.table, line(list, text));
    return false;
  }
  if (event.event === "retry") {
    line(list, `attempt ${event.attempt} failed, trying again in ${event.retry_in_s} s: ${problemText(event.error)}`, "warn");
    return false;
  }
  if (event.event === "error") {
    line(list, problemText(event), "error");
    return true;
  }
  if (event.event === "done") {
    let failed = false;
    for (const report of event.reports) {
      for (const t of report.tables) {
        if (t.error) line(list, `${t.table}: ${problemText(t.error)}`, "error");
      }
      if (report.error) {
        line(list, `${report.source}: ${problemText(report.error)}`, "error");
        failed = true;
      } else {
        line(list, `done: ${report.source} synced, ${report.rows} rows in ${report.seconds} s`, "ok done");
      }
    }
    return failed;
  }
  return false;
}

function refreshCard(name) {
  const card = document.getElementById(`source-${name}`);
  const log = card && card.querySelector(".progress");
  if (!card || !window.htmx) return;
  // Keep the progress log: the new card comes with an empty one.
  const kept = log ? Array.from(log.childNodes) : [];
  window.htmx.ajax("GET", `/sources/${encodeURIComponent(name)}/card`, { target: card, swap: "outerHTML" }).then(() => {
    const fresh = document.getElementById(`source-${name}`);
    const box = fresh && fresh.querySelector(".progress");
    if (box) box.replaceChildren(...kept);
  });
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.sync-now");
  if (button) syncNow(button);
});
