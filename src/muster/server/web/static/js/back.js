// "Go back" on error pages: a button, because the page's policy runs no javascript: links.
document.getElementById("go-back").addEventListener("click", () => history.back());
