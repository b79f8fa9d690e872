// Progressive enhancement shared by every page: htmx requests carry the session's CSRF token.
document.addEventListener("htmx:configRequest", (event) => {
  event.detail.headers["X-CSRF-Token"] = document.body.dataset.csrf || "";
});
// fetch() calls of the pages' scripts use this to send the token too.
window.meterqlHeaders = (extra = {}) => ({ "X-CSRF-Token": document.body.dataset.csrf || "", ...extra });
