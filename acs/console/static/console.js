// The console's only script: actions without reloading, live task results, live device state,
// in-place editing of writable parameters, keyboard navigation. No dependencies, no inline code.
"use strict";
(function () {
  const body = document.body;
  const csrf = body.dataset.csrf;
  const msg = (key) => body.dataset["msg" + key.charAt(0).toUpperCase() + key.slice(1).replace(/_(.)/g, (_, c) => c.toUpperCase())] || key;
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => node.setAttribute(key, value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function post(url, data) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", body: new URLSearchParams(data),
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
    });
    let payload = {};
    try { payload = await response.json(); } catch (error) { payload = { error: { message: response.statusText } }; }
    return { status: response.status, payload };
  }

  // -- showing what happened ------------------------------------------------------------------

  function activityItem(label) {
    const list = document.getElementById("activity");
    const item = el("li", { class: "pending" });
    item.append(el("strong", {}, label + ": "), el("span", { class: "state" }, "…"), el("div", { class: "detail" }));
    if (list) list.prepend(item);
    return item;
  }

  function show(item, state, cls, detail) {
    item.className = cls;
    item.querySelector(".state").textContent = state;
    const box = item.querySelector(".detail");
    box.replaceChildren();
    if (detail) box.append(detail);
  }

  function resultDetail(task) {
    // Sentences and tables made by the server in the user's language: never raw JSON.
    const box = el("div");
    if (task.fault) {
      box.append(el("p", { class: "fault" }, task.fault.text));
      (task.fault.detail || []).forEach((line) => box.append(el("p", { class: "fault" }, line)));
    }
    if (task.text) box.append(el("p", { class: "result-text" }, task.text));
    if (task.reason) box.append(el("p", {}, task.reason));
    if (task.table && task.table.length) {
      const table = el("table", { class: "values" });
      task.table.forEach(([name, value]) => {
        const row = el("tr");
        row.append(el("td", {}, name), el("td", {}, value));
        table.append(row);
      });
      box.append(table);
    }
    return box;
  }

  async function follow(item, task) {
    let current = task;
    let delay = 0;
    refreshRegions();
    while (!current.final) {
      show(item, current.status_text, "pending");
      try {
        const response = await fetch(`/tasks/${current.id}.json?wait=10`, { headers: { Accept: "application/json" } });
        if (response.ok) { current = await response.json(); delay = 0; continue; }
      } catch (error) { /* the network blinked: back off and ask again */ }
      delay = Math.min(delay * 2 || 500, 10000);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    show(item, current.status_text, current.status === "done" ? "ok" : "bad", resultDetail(current));
    refreshHistory();
    refreshRegions();
  }

  async function submitAction(form, submitter) {
    const label = form.dataset.action;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const url = (submitter && submitter.getAttribute("formaction")) || form.action;
    const item = activityItem(label);
    let reply;
    try {
      reply = await post(url, new FormData(form));
    } catch (error) {
      show(item, msg("network_error"), "bad");
      return;
    }
    const { status, payload } = reply;
    if (status >= 400) {
      // The typed text stays in the form: an expired session or a refusal loses nothing.
      const text = status === 401 ? msg("session_expired") : (payload.error && payload.error.message) || msg("failed");
      show(item, text, "bad");
      return;
    }
    if (form.dataset.reload !== undefined) { window.location.reload(); return; }
    if (payload.task) {
      const detail = payload.wake && payload.wake.text ? el("p", { class: "wake" }, payload.wake.text) : null;
      if (detail) item.querySelector(".detail").append(detail);
      return follow(item, payload.task);
    }
    const failed = payload.wake && payload.wake.answered === false;
    show(item, msg(failed ? "failed" : "done"), failed ? "bad" : "ok",
         el("p", {}, (payload.wake && payload.wake.text) || payload.text || ""));
    refreshHistory();
    refreshRegions();
  }

  // Re-render the parts of the page marked data-region (by id) from a fresh copy of the page.
  async function refreshRegions() {
    const regions = document.querySelectorAll("[data-region][id]");
    if (!regions.length) return;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      regions.forEach((region) => {
        const replacement = fresh.getElementById(region.id);
        if (replacement) region.replaceWith(document.importNode(replacement, true));
      });
    } catch (error) { /* the next refresh will do */ }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset || !form.dataset.action) return;
    event.preventDefault();
    submitAction(form, event.submitter);
  });

  // -- type-aware editing of writable parameters ------------------------------------------------

  const INT = { "xsd:int": [-2147483648, 2147483647], "xsd:unsignedInt": [0, 4294967295],
                "xsd:long": [-9223372036854775808, 9223372036854775807], "xsd:unsignedLong": [0, 18446744073709551615] };

  function validate(type, text) {
    if (INT[type]) {
      if (!/^-?\d+$/.test(text.trim())) return false;
      const n = Number(text);
      return n >= INT[type][0] && n <= INT[type][1];
    }
    if (type === "xsd:boolean") return /^(true|false|1|0)$/i.test(text.trim());
    if (type === "xsd:dateTime") return !Number.isNaN(Date.parse(text));
    return true;
  }

  function editor(span) {
    const type = span.dataset.type;
    const form = el("form", { class: "inline edit", "data-action": span.dataset.edit });
    let input;
    if (type === "xsd:boolean") {
      input = el("select", { name: "value" });
      ["true", "false"].forEach((v) => input.append(el("option", v === span.dataset.value || (v === "true" && span.dataset.value === "1") ? { selected: "" } : {}, v)));
    } else {
      input = el("input", { name: "value", value: span.dataset.value, type: INT[type] ? "number" : "text" });
      if (INT[type]) { input.min = INT[type][0]; input.max = INT[type][1]; input.step = 1; }
    }
    form.append(el("input", { type: "hidden", name: "name", value: span.dataset.edit }), input, el("button", {}, msg("save")));
    form.action = document.getElementById("device").dataset.set;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      event.stopPropagation();
      if (!validate(type, input.value)) { input.setCustomValidity(msg("invalid_value")); input.reportValidity(); return; }
      input.setCustomValidity("");
      submitAction(form);
    });
    input.addEventListener("input", () => input.setCustomValidity(""));
    span.replaceWith(form);
    input.focus();
  }

  document.addEventListener("click", (event) => {
    const span = event.target.closest && event.target.closest("[data-edit]");
    if (span) editor(span);
  });

  // -- live device state ----------------------------------------------------------------------

  const device = document.getElementById("device");

  async function refreshHistory() {
    if (!device || !device.dataset.history) return;
    const response = await fetch(device.dataset.history);
    if (response.ok) document.getElementById("history-rows").innerHTML = await response.text();
  }

  async function pollLive() {
    let delay = 2000;
    let lastSession = device.dataset.session;
    let wasOnline = document.getElementById("online").classList.contains("on");
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, document.hidden ? 15000 : delay));
      try {
        const response = await fetch(device.dataset.live, { headers: { Accept: "application/json" } });
        if (!response.ok) { delay = Math.min(delay * 2, 30000); continue; }
        const live = await response.json();
        // The same text (format, zone, age) the server rendered: one date format on the page.
        document.getElementById("last-inform").textContent = live.last_inform_text;
        if (live.online !== wasOnline) {
          wasOnline = live.online;
          await refreshRegions();
        }
        if (live.last_session && live.last_session.id !== lastSession) {
          lastSession = live.last_session.id;
          const notice = document.getElementById("new-session");
          notice.textContent = `${msg("new_session")}: ${live.last_session.summary}`;
          notice.hidden = false;
          await refreshHistory();
          await refreshRegions();
          delay = 2000;
        } else {
          delay = Math.min(delay * 1.5, 10000);
        }
      } catch (error) {
        delay = Math.min(delay * 2, 30000);
      }
    }
  }

  if (device && device.dataset.live) pollLive();

  // -- the incident dashboard refreshes itself ---------------------------------------------------

  const incidents = document.getElementById("incidents");

  async function pollIncidents() {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, document.hidden ? 60000 : 10000));
      try {
        const response = await fetch(incidents.dataset.refresh);
        if (response.ok) document.getElementById("incident-rows").innerHTML = await response.text();
      } catch (error) { /* next round */ }
    }
  }

  if (incidents && incidents.dataset.refresh) pollIncidents();

  // -- keyboard -------------------------------------------------------------------------------

  document.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
    if (event.key === "/") {
      const box = document.getElementById("q") || document.getElementById("tree-q");
      // "/" is the hint's key to the search box, never a character typed into it (an empty or
      // fully selected box); in any other field it types as usual.
      const inBox = box && document.activeElement === box;
      const boxIdle = inBox && (box.value === "" || box.selectionEnd - box.selectionStart === box.value.length);
      if (box && (!typing || boxIdle)) { event.preventDefault(); box.focus(); box.select(); }
      return;
    }
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const links = Array.from(document.querySelectorAll("a.result"));
    if (!links.length) return;
    const at = links.indexOf(document.activeElement);
    if (typing && event.key === "ArrowUp") return;
    event.preventDefault();
    const next = event.key === "ArrowDown" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
    links[next].focus();
  });
})();
