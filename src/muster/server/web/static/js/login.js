// Log in through the API (it sets the session cookie), then go where we were headed.
const form = document.getElementById("login");
const problem = document.getElementById("login-problem");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.hidden = true;
  const response = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ username: form.username.value, password: form.password.value }),
  });
  if (response.ok) {
    window.location.assign(form.dataset.next || "/");
    return;
  }
  const body = await response.json().catch(() => ({}));
  problem.textContent = body.message || "Login failed";
  problem.hidden = false;
  form.password.focus();
});
