// The body editor: a transparent textarea over a highlighted <pre>, kept in step
// on every input and scroll. Without JavaScript the plain textarea still works.
import { highlight } from "./highlight.js";

const editor = document.querySelector(".editor");
if (editor) {
  const area = editor.querySelector("textarea");
  const view = editor.querySelector(".editor-view code");
  const pre = editor.querySelector(".editor-view");
  const shellSelect = document.getElementById("shell");

  const declared = () => {
    const names = [...document.querySelectorAll('input[name$="_name"]')].map((i) => i.value.trim()).filter(Boolean);
    return new Set(names);
  };

  const paint = () => {
    // A trailing newline needs a character after it to take up a line.
    const text = area.value.endsWith("\n") ? `${area.value} ` : area.value;
    view.innerHTML = highlight(text, shellSelect ? shellSelect.value : "bash", declared());
    pre.scrollTop = area.scrollTop;
    pre.scrollLeft = area.scrollLeft;
  };

  area.addEventListener("input", paint);
  area.addEventListener("scroll", () => {
    pre.scrollTop = area.scrollTop;
    pre.scrollLeft = area.scrollLeft;
  });
  // Tab indents instead of leaving the field; Escape then Tab leaves it (keyboard users).
  let escaped = false;
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { escaped = true; return; }
    if (event.key === "Tab" && !event.shiftKey && !escaped) {
      event.preventDefault();
      area.setRangeText("\t", area.selectionStart, area.selectionEnd, "end");
      paint();
    }
    if (event.key !== "Tab") escaped = false;
  });
  if (shellSelect) shellSelect.addEventListener("change", paint);
  document.addEventListener("input", (event) => {
    if (event.target.matches && event.target.matches('input[name$="_name"]')) paint();
  });
  new ResizeObserver(paint).observe(area);
  editor.classList.add("live");
  paint();
}
