// The slow-internet panel: "Read now" queues the targeted reads, waits for each task to be final
// (long poll of /tasks/<id>.json), then reloads the panel with what the device said.
(function () {
  "use strict";
  const panel = document.getElementById("lan");
  const button = document.getElementById("lan-read");
  const status = document.getElementById("lan-status");
  if (!panel || !button || !status) return;

  async function final(taskId) {
    for (let round = 0; round < 30; round++) {
      const response = await fetch("/tasks/" + encodeURIComponent(taskId) + ".json?wait=10",
                                   { headers: { Accept: "application/json" } });
      if (!response.ok) return null;
      const task = await response.json();
      if (task.final) return task;
    }
    return null;
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = panel.dataset.waiting;
    try {
      const response = await fetch(panel.dataset.read, {
        method: "POST",
        headers: { "X-CSRF-Token": panel.dataset.csrf, Accept: "application/json" },
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
      if (body.wake && body.wake.text) status.textContent = panel.dataset.waiting + " " + body.wake.text;
      await Promise.all(body.task_ids.map(final));
      window.location.reload();
    } catch (error) {
      status.textContent = panel.dataset.failed + " " + error.message;
      button.disabled = false;
    }
  });
})();
