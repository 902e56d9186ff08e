// Parameter rows of the script form: add, remove, and show "choices" for choice types.
const rows = document.getElementById("param-rows");
const add = document.getElementById("add-param");

function renumber(row, index) {
  row.dataset.index = index;
  for (const el of row.querySelectorAll("[id], [name], label[for]")) {
    for (const attr of ["id", "name", "for"]) {
      const value = el.getAttribute(attr);
      if (value) el.setAttribute(attr, value.replace(/^p\d+_/, `p${index}_`));
    }
  }
  for (const hidden of row.querySelectorAll(".sr")) hidden.textContent = ` of parameter ${index + 1}`;
  const remove = row.querySelector(".remove-row");
  if (remove) remove.setAttribute("aria-label", `Remove parameter ${index + 1}`);
}

function syncChoices(row) {
  const type = row.querySelector(".ptype");
  const choices = row.querySelector(".choices");
  if (type && choices) choices.hidden = type.value !== "choice";
  syncDefault(row);
}

// A boolean's or a choice's default is picked from its possible values, never typed.
function syncDefault(row) {
  const type = row.querySelector(".ptype").value;
  const current = row.querySelector('[id$="_default"]');
  if (!current) return;
  let options = null;
  if (type === "boolean") options = ["true", "false"];
  if (type === "choice") {
    const text = row.querySelector('[id$="_choices"]').value;
    options = text.split(",").map((c) => c.trim()).filter(Boolean);
  }
  const value = current.value;
  let next;
  if (options) {
    next = document.createElement("select");
    next.append(new Option("(no default)", ""));
    for (const o of options) next.append(new Option(o, o));
    next.value = options.includes(value) ? value : "";
  } else {
    if (current.tagName === "INPUT") return;
    next = document.createElement("input");
    next.value = value;
  }
  for (const attr of ["id", "name", "aria-invalid", "aria-describedby"]) {
    const v = current.getAttribute(attr);
    if (v !== null) next.setAttribute(attr, v);
  }
  current.replaceWith(next);
}

if (rows && add) {
  const template = rows.querySelector(".param-row").cloneNode(true);
  add.addEventListener("click", () => {
    const row = template.cloneNode(true);
    for (const input of row.querySelectorAll("input, select:not(.ptype)")) {
      if (input.type === "checkbox") input.checked = false;
      else input.value = "";
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
    for (const p of row.querySelectorAll(".problem")) p.remove();
    row.querySelector(".ptype").value = "string";
    const next = Math.max(-1, ...[...rows.children].map((r) => Number(r.dataset.index))) + 1;
    renumber(row, next);
    syncChoices(row);
    rows.append(row);
    row.querySelector("input").focus();
  });
  rows.addEventListener("click", (event) => {
    const button = event.target.closest(".remove-row");
    if (!button) return;
    const row = button.closest(".param-row");
    if (rows.children.length > 1) row.remove();
    else for (const input of row.querySelectorAll("input:not([type=checkbox])")) input.value = "";
    add.focus();
  });
  rows.addEventListener("change", (event) => {
    if (event.target.classList.contains("ptype")) syncChoices(event.target.closest(".param-row"));
    if (event.target.id.endsWith("_choices")) syncDefault(event.target.closest(".param-row"));
  });
}
