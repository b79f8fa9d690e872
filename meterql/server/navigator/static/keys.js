// Keys: a revocation happens only once confirmed; the new key's copy button.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  const said = button.parentElement.querySelector(".copied");
  input.select();
  let ok = false;
  try {
    await navigator.clipboard.writeText(input.value);
    ok = true;
  } catch {
    ok = document.execCommand("copy");  // (no clipboard API outside a secure context)
  }
  said.textContent = ok ? "Copied." : "Press Ctrl-C to copy the selected key.";
});
