// Small helpers shared by the console's modules.

/** The session's CSRF token (empty when the console runs without logins). */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** GET a console JSON endpoint; throws with the server's message on failure. */
export async function getJSON(url, options = {}) {
  const response = await fetch(url, {
    headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
    credentials: "same-origin",
    ...options,
  });
  if (response.status === 401) {
    window.location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    throw new Error("please log in");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `request failed (${response.status})`);
  return body;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
