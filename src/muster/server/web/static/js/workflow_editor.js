// The workflow editor: checks the definition as you type (the server's validation,
// the same the API and the CLI use) and redraws the graph the server renders.
import { csrfToken, debounce } from "./common.js";

const source = document.getElementById("wf-source");
const status = document.getElementById("wf-check");
const graph = document.getElementById("wf-graph");

async function check() {
  let body;
  try {
    const response = await fetch("/api/v1/automation/workflows/validate", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify({ source: source.value }),
    });
    body = await response.json();
  } catch (err) {
    status.textContent = "Could not check the definition: " + err;
    return;
  }
  if (body.valid) {
    status.textContent = `Valid: ${body.steps.length} step(s).`;
    status.classList.remove("error");
    // The SVG is built by the server, which escapes every text in it.
    const doc = new DOMParser().parseFromString(body.svg, "image/svg+xml");
    graph.replaceChildren(document.importNode(doc.documentElement, true));
  } else {
    const p = body.problem || {};
    const where = p.step ? `Step ${p.step}` : (p.field || "Definition");
    status.textContent = `${where}: ${p.message}`;
    status.classList.add("error");
  }
}

if (source && status && graph) {
  source.addEventListener("input", debounce(check, 300));
  check();
}
