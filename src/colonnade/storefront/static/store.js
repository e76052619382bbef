// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The waiting room's page sends its form again when the shop said to come back.
  const queued = document.getElementById("queued");
  if (queued) {
    const seconds = Number(queued.dataset.retryAfter) || 1;
    setTimeout(() => queued.submit(), seconds * 1000);
  }
  // A purchase is sent once: a second click would only wait on the first.
  for (const form of document.querySelectorAll("form.checkout")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button[type=submit]")) {
        button.disabled = true;
      }
    });
  }
});
