// The live execution view. One batched summary request per second while the
// execution runs (counts, progress, result groups, one page of the host grid),
// whatever the number of hosts; the chosen host's output streams over SSE.
import { escapeHtml, getJSON } from "./common.js";

const root = document.getElementById("exec");
const id = root.dataset.id;
const pageSize = Number(root.dataset.pageSize);
const grid = document.getElementById("grid");
const panel = document.getElementById("host-panel");
const POLL_MS = 1000;
const MAX_OUTPUT = 1_000_000;

const params = new URLSearchParams(location.search);
const view = { filter: params.get("filter") || "", group: params.get("group") || "", offset: Number(params.get("offset") || 0) };
let terminal = root.dataset.terminal === "true";
let timer = null;
let inFlight = false;
let source = null;
let selected = null;
let showing = null;
let panelHost = "";

const label = (state) => state.replaceAll("_", " ");
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function query() {
  const q = new URLSearchParams();
  if (view.filter) q.set("filter", view.filter);
  if (view.group) q.set("group", view.group);
  if (view.offset) q.set("offset", String(view.offset));
  return q.toString();
}

async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const data = await getJSON(`/ui/executions/${id}/summary?${query()}`);
    render(data);
    terminal = data.terminal;
  } catch (error) {
    document.getElementById("grid-note").textContent = `Live updates paused: ${error.message}`;
  } finally {
    inFlight = false;
  }
  schedule();
}

function schedule() {
  clearTimeout(timer);
  if (!terminal) timer = setTimeout(refresh, POLL_MS);
}

function render(data) {
  showStatus(data.shown);
  // Decided elsewhere (the inbox, another approver): the approval card has done its job.
  const waiting = document.getElementById("approval");
  if (waiting && data.status !== "pending_approval") waiting.hidden = true;
  const bar = document.getElementById("progress");
  bar.className = `progress s-${data.shown}`;
  bar.setAttribute("aria-valuenow", String(data.progress));
  bar.setAttribute("aria-valuetext", `${data.done} of ${data.total} hosts finished, ${label(data.shown)}`);
  bar.querySelector(".bar").style.width = `${data.progress}%`;
  document.getElementById("progress-text").innerHTML =
    `<strong>${data.done}</strong> of <strong>${data.total}</strong> hosts finished (${data.progress}%)`;
  document.getElementById("counts").innerHTML = Object.entries(data.counts)
    .map(([s, n]) => `<li class="s-${s}" data-state="${s}"><span class="n">${n}</span> ${escapeHtml(label(s))}</li>`)
    .join("");
  document.getElementById("groups").innerHTML = data.groups
    .map((g) => {
      const more = g.count > g.hosts.length ? ", …" : "";
      const on = g.key === view.group ? " on" : "";
      return `<li><a href="?group=${g.key}" data-group="${g.key}" class="s-${g.state}${on}"><strong>${plural(g.count, "host")}</strong>: ${escapeHtml(g.label)}</a>
        <span class="muted small">${escapeHtml(g.hosts.join(", "))}${more}</span></li>`;
    })
    .join("");
  if (data.finished_at) document.getElementById("finished").textContent = `finished ${data.finished_at.replace("T", " ").slice(0, 19)}`;
  const failed = (data.counts.failed || 0) + (data.counts.timed_out || 0) + (data.counts.lost || 0);
  const retry = document.getElementById("retry-form");
  if (retry) retry.hidden = failed === 0;
  const cancel = document.getElementById("cancel-form");
  if (cancel) cancel.hidden = data.terminal || data.shown === "cancelling";
  renderGrid(data.grid);
  renderFilters();
}

function showStatus(state) {
  document.getElementById("status").innerHTML = `<span class="badge s-${state}">${escapeHtml(label(state))}</span>`;
}

// Cancel asks first; once confirmed the page says "cancelling" at once, while
// the server stops the running hosts.
const cancelForm = document.getElementById("cancel-form");
if (cancelForm) {
  const ask = document.getElementById("cancel-ask");
  const confirmBox = document.getElementById("cancel-confirm");
  cancelForm.addEventListener("submit", (event) => {
    if (event.submitter === ask) {
      event.preventDefault();
      ask.hidden = true;
      confirmBox.hidden = false;
      document.getElementById("cancel-no").focus();
      return;
    }
    showStatus("cancelling");
    document.getElementById("progress").className = "progress s-cancelling";
  });
  document.getElementById("cancel-no").addEventListener("click", () => {
    confirmBox.hidden = true;
    ask.hidden = false;
    ask.focus();
  });
}

function renderGrid(page) {
  const cells = page.cells;
  const existing = [...grid.children];
  const sameHosts = existing.length === cells.length && cells.every((c, i) => existing[i].dataset.run === c[0]);
  if (!sameHosts) {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.run : null;
    grid.replaceChildren(...cells.map(makeCell));
    rovingFocus(focused);
    if (focused) grid.querySelector(`[data-run="${focused}"]`)?.focus();
  } else {
    cells.forEach((c, i) => paintCell(existing[i], c));
  }
  const shown = cells.length;
  document.getElementById("grid-note").textContent =
    page.total > shown ? `Showing ${page.offset + 1}–${page.offset + shown} of ${page.total}` : plural(page.total, "host");
  const [prev, next] = document.querySelectorAll("#grid-pager button");
  prev.hidden = page.offset === 0;
  next.hidden = page.offset + page.limit >= page.total;
}

function makeCell(c) {
  const cell = document.createElement("button");
  cell.type = "button";
  cell.setAttribute("role", "listitem");
  cell.dataset.run = c[0];
  cell.dataset.host = c[1];
  const span = document.createElement("span");
  span.textContent = c[1];
  cell.append(span);
  paintCell(cell, c);
  return cell;
}

function paintCell(cell, [run, host, state, code]) {
  cell.className = `cell s-${state}${run === selected ? " selected" : ""}`;
  cell.title = `${host}: ${label(state)}${code === null ? "" : ` (exit ${code})`}`;
  cell.dataset.state = state;
}

// Arrow keys move between hosts; only one cell is in the Tab order.
function rovingFocus(current) {
  const cells = [...grid.children];
  cells.forEach((c) => (c.tabIndex = -1));
  const start = cells.find((c) => c.dataset.run === current) || cells[0];
  if (start) start.tabIndex = 0;
}

grid.addEventListener("keydown", (event) => {
  const cells = [...grid.children];
  const at = cells.indexOf(document.activeElement);
  if (at < 0) return;
  const columns = Math.max(1, cells.filter((c) => c.offsetTop === cells[0].offsetTop).length);
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns, Home: -at, End: cells.length - 1 - at }[event.key];
  if (step === undefined) return;
  event.preventDefault();
  const target = cells[Math.min(cells.length - 1, Math.max(0, at + step))];
  cells.forEach((c) => (c.tabIndex = -1));
  target.tabIndex = 0;
  target.focus();
});

grid.addEventListener("click", (event) => {
  const cell = event.target.closest(".cell");
  if (cell) openHost(cell.dataset.run, cell.dataset.host);
});

function renderFilters() {
  for (const a of document.querySelectorAll("#filters a")) {
    const on = !view.group && a.dataset.filter === view.filter;
    if (on) a.setAttribute("aria-current", "true");
    else a.removeAttribute("aria-current");
  }
}

function navigate(change) {
  Object.assign(view, { offset: 0 }, change);
  const q = query();
  history.replaceState(null, "", q ? `?${q}` : location.pathname);
  refresh();
}

document.getElementById("filters").addEventListener("click", (event) => {
  const a = event.target.closest("a[data-filter]");
  if (!a) return;
  event.preventDefault();
  navigate({ filter: a.dataset.filter, group: "" });
});

document.getElementById("groups").addEventListener("click", (event) => {
  const a = event.target.closest("a[data-group]");
  if (!a) return;
  event.preventDefault();
  navigate({ group: view.group === a.dataset.group ? "" : a.dataset.group, filter: "" });
});

document.getElementById("grid-pager").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-step]");
  if (!button) return;
  navigate({ offset: Math.max(0, view.offset + Number(button.dataset.step) * pageSize) });
});

// --- one host's output ------------------------------------------------------

function append(pre, text) {
  const nearBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
  pre.append(document.createTextNode(text));
  if (pre.textContent.length > MAX_OUTPUT) pre.textContent = `[earlier output trimmed]\n${pre.textContent.slice(-MAX_OUTPUT / 2)}`;
  if (nearBottom) pre.scrollTop = pre.scrollHeight;
}

function showRun(run) {
  document.getElementById("panel-state").innerHTML = `<span class="badge s-${run.state}">${escapeHtml(label(run.state))}</span>`;
  const bits = [];
  if (run.exit_code !== null) bits.push(`exit ${run.exit_code}`);
  if (run.attempt > 1 || showing !== selected) bits.push(`attempt ${run.attempt}`);
  if (run.duration !== null) bits.push(`${run.duration.toFixed(1)}s`);
  if (run.waiting_reason) bits.push(`waiting: ${run.waiting_reason}`);
  // Why it did not succeed (host deleted, plan error, transport error...); an exit
  // code already says "command failed".
  if (run.reason && run.state !== "succeeded" && !(run.reason === "command_failed" && run.exit_code !== null)) bits.push(run.reason.replaceAll("_", " "));
  // The transport's "exit code N" says again what "exit N" said.
  if (run.message && run.message !== `exit code ${run.exit_code}`) bits.push(run.message);
  if (run.stdout_truncated || run.stderr_truncated) bits.push("output truncated at the storage cap");
  document.getElementById("panel-meta").textContent = bits.join(" · ");
  showAttempts(run);
}

// Earlier attempts of a re-run host stay readable: a link back through retry_of,
// and from an older attempt a way back to the newest.
function showAttempts(run) {
  const box = document.getElementById("panel-attempts");
  box.replaceChildren();
  if (run.retry_of) {
    const older = document.createElement("button");
    older.type = "button";
    older.className = "small";
    older.textContent = `Show attempt ${run.attempt - 1}`;
    older.addEventListener("click", () => openRun(run.retry_of, panelHost));
    box.append(older);
  }
  if (showing !== selected) {
    const newest = document.createElement("button");
    newest.type = "button";
    newest.className = "small";
    newest.textContent = "Show the newest attempt";
    newest.addEventListener("click", () => openRun(selected, panelHost));
    box.append(newest);
  }
  box.hidden = box.childElementCount === 0;
}

function openHost(run, host) {
  selected = run;
  for (const c of grid.querySelectorAll(".cell.selected")) c.classList.remove("selected");
  grid.querySelector(`[data-run="${run}"]`)?.classList.add("selected");
  openRun(run, host);
  panel.scrollIntoView({ block: "nearest" });
}

function openRun(run, host) {
  if (source) source.close();
  showing = run;
  panelHost = host;
  document.getElementById("panel-attempts").hidden = true;
  panel.hidden = false;
  panel.dataset.run = run;
  document.getElementById("panel-host").textContent = host;
  document.getElementById("panel-state").textContent = "";
  document.getElementById("panel-meta").textContent = "connecting…";
  const out = document.getElementById("panel-stdout");
  const err = document.getElementById("panel-stderr");
  out.textContent = "";
  err.textContent = "";
  document.getElementById("panel-log").href = `/api/v1/automation/executions/${id}/hosts/${run}/log?stream=all`;
  source = new EventSource(`/ui/executions/${id}/runs/${run}/output`);
  source.addEventListener("output", (e) => {
    const chunk = JSON.parse(e.data);
    append(chunk.stream === "stderr" ? err : out, chunk.data);
  });
  source.addEventListener("state", (e) => showRun(JSON.parse(e.data)));
  source.addEventListener("end", (e) => {
    showRun(JSON.parse(e.data));
    panel.dataset.ended = "true";
    source.close();
    source = null;
  });
  panel.dataset.ended = "false";
}

function closeHost() {
  if (source) source.close();
  source = null;
  selected = null;
  panel.hidden = true;
  for (const c of grid.querySelectorAll(".cell.selected")) c.classList.remove("selected");
}

document.getElementById("panel-close").addEventListener("click", closeHost);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !panel.hidden) closeHost();
});

// The bar's first width comes from the markup's aria-valuenow: the page's policy
// allows no inline style attributes.
document.querySelector("#progress .bar").style.width = `${Number(document.getElementById("progress").getAttribute("aria-valuenow")) || 0}%`;
rovingFocus(null);
schedule();
