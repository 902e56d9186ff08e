// Highlight read-only code blocks: <pre data-highlight="shell" data-params="a b">.
import { highlight } from "./highlight.js";

for (const pre of document.querySelectorAll("pre[data-highlight]")) {
  const code = pre.querySelector("code") || pre;
  const names = pre.dataset.params;
  const params = names === undefined ? null : new Set(names.split(" ").filter(Boolean));
  code.innerHTML = highlight(code.textContent, pre.dataset.highlight, params);
}
