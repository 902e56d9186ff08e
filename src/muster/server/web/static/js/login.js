// Log in through the API (it sets the session cookie), then go where we were headed:
// the password page first when the password was generated for one use.
const form = document.getElementById("login");
const problem = document.getElementById("login-problem");

// The server already reduced "next" to a path on this site; check again here so that
// nothing this script navigates to can leave the origin.
function sameOriginTarget(raw) {
  const target = new URL(raw || "/", window.location.origin);
  if (target.origin !== window.location.origin) return "/";
  return target.pathname + target.search + target.hash;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.hidden = true;
  const response = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ username: form.username.value, password: form.password.value }),
  });
  const body = await response.json().catch(() => ({}));
  if (response.ok) {
    const next = sameOriginTarget(form.dataset.next);
    window.location.assign(
      body.must_change_password ? `/password?next=${encodeURIComponent(next)}` : next,
    );
    return;
  }
  problem.textContent = body.message || "Login failed";
  problem.hidden = false;
  form.password.focus();
});
