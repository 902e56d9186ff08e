// Host picker: a live count of the hosts the text selects, resolved by the server
// with the same rules an execution uses.
import { debounce, getJSON } from "./common.js";

const input = document.getElementById("targets");
const count = document.getElementById("target-count");
const names = document.getElementById("target-names");
// The server's own verdict on the submitted hosts, shown beside the field: the live
// count does not say it a second time until the text changes.
let served = document.getElementById("err-targets");

async function resolve() {
  const q = input.value.trim();
  if (!q) {
    count.value = "No hosts selected";
    names.textContent = "";
    return;
  }
  try {
    const data = await getJSON(`/ui/hosts/resolve?q=${encodeURIComponent(q)}`);
    if (data.problem) {
      count.value = "0 hosts selected";
      if (served && served.textContent.includes(data.problem)) {
        names.textContent = "";
        return;
      }
      names.textContent = data.problem;
      names.classList.add("problem");
      return;
    }
    names.classList.remove("problem");
    count.value = `${data.count} host${data.count === 1 ? "" : "s"} selected`;
    const more = data.count > data.names.length ? `, … (${data.count - data.names.length} more)` : "";
    names.textContent = data.names.join(", ") + more;
  } catch (error) {
    count.value = `Could not count hosts: ${error.message}`;
  }
}

if (input) {
  input.addEventListener("input", () => {
    if (served) {
      served.remove();
      served = null;
    }
  });
  input.addEventListener("input", debounce(resolve, 200));
  for (const chip of document.querySelectorAll("[data-add]")) {
    chip.addEventListener("click", () => {
      const parts = input.value.split(/[,\s]+/).filter(Boolean);
      if (!parts.includes(chip.dataset.add)) parts.push(chip.dataset.add);
      input.value = parts.join(", ");
      resolve();
      input.focus();
    });
  }
  resolve();
}
