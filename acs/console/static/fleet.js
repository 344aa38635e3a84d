// The fleet pages (issue 16 items 1-4, 9): confirm before a plain form, select a page of devices,
// and follow a bulk action's progress. No inline script (the CSP forbids it).
(() => {
  "use strict";

  // A plain form (no data-action: console.js does not take it over) with data-confirm asks first.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset || form.dataset.action !== undefined || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);

  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll("input.pick").forEach((box) => { box.checked = all.checked; });
    });
  }

  // A bulk action's page: re-read its progress until it is finished or cancelled.
  const progress = document.getElementById("bulk-status");
  if (progress && progress.dataset.state === "running") {
    let delay = 1000;
    const poll = async () => {
      try {
        const response = await fetch(window.location.pathname + ".json", { headers: { Accept: "application/json" } });
        if (response.ok) {
          const batch = await response.json();
          const fresh = new DOMParser().parseFromString(batch.html, "text/html").getElementById("bulk-status");
          const current = document.getElementById("bulk-status");
          if (fresh && current) current.replaceWith(document.importNode(fresh, true));
          if (batch.state !== "running") return;
        }
      } catch (error) { /* the network blinked: ask again later */ }
      delay = Math.min(delay * 1.5, 5000);
      setTimeout(poll, delay);
    };
    setTimeout(poll, delay);
  }
})();
