// Log out through the API (it drops the session), then show the login page.
import { csrfToken } from "./common.js";

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/api/v1/auth/logout", {
    method: "POST",
    headers: { "X-CSRF-Token": csrfToken() },
    credentials: "same-origin",
  });
  window.location.assign("/login");
});
