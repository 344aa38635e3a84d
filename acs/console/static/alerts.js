// Alerts: the open-incident count in the navigation bar and a notice for each new incident, pushed by
// the server (server-sent events, /alerts/stream). Sound and browser notifications are per browser
// (localStorage), switched on the Alerts page. EventSource reconnects by itself after a drop.
(function () {
  "use strict";
  const SOUND = "acs-alert-sound";
  const NOTIFY = "acs-alert-notify";
  const badge = document.getElementById("alert-count");
  const toasts = document.getElementById("alert-toasts");
  if (!badge || !toasts || !window.EventSource) return;

  function beep() {
    const Audio = window.AudioContext || window.webkitAudioContext;
    if (!Audio) return;
    const context = new Audio();
    const tone = context.createOscillator();
    const volume = context.createGain();
    tone.frequency.value = 880;
    volume.gain.value = 0.1;
    tone.connect(volume).connect(context.destination);
    tone.start();
    tone.stop(context.currentTime + 0.25);
  }

  function toast(alert) {
    const box = document.createElement("div");
    box.className = "toast";
    box.setAttribute("role", "alert");
    const heading = document.createElement("strong");
    heading.textContent = alert.heading;
    const link = document.createElement("a");
    link.href = alert.url;
    link.textContent = alert.title;
    const close = document.createElement("button");
    close.className = "small";
    close.textContent = "×";
    close.addEventListener("click", () => box.remove());
    box.append(heading, document.createElement("br"), link, close);
    toasts.prepend(box);
  }

  const stream = new EventSource("/alerts/stream");
  stream.addEventListener("count", (event) => {
    const open = JSON.parse(event.data).open;
    badge.textContent = String(open);
    badge.hidden = open === 0;
    const onPage = document.getElementById("open-count");
    if (onPage) onPage.textContent = String(open);
  });
  stream.addEventListener("incident", (event) => {
    const alert = JSON.parse(event.data);
    toast(alert);
    const list = document.getElementById("open-incidents");
    if (list) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = alert.url;
      link.textContent = "#" + alert.id + " " + alert.title;
      item.append(link);
      list.prepend(item);
    }
    if (localStorage.getItem(SOUND) === "1") beep();
    if (localStorage.getItem(NOTIFY) === "1" && window.Notification && Notification.permission === "granted") {
      new Notification(alert.heading, { body: alert.title, tag: "incident-" + alert.id });
    }
  });

  // The switches of the Alerts page.
  const sound = document.getElementById("alert-sound");
  const notify = document.getElementById("alert-notify");
  const state = document.getElementById("alert-notify-state");
  if (sound) {
    sound.checked = localStorage.getItem(SOUND) === "1";
    sound.addEventListener("change", () => {
      localStorage.setItem(SOUND, sound.checked ? "1" : "0");
      if (sound.checked) beep();
    });
  }
  if (notify && state) {
    notify.checked = localStorage.getItem(NOTIFY) === "1";
    notify.addEventListener("change", async () => {
      if (!notify.checked) { localStorage.setItem(NOTIFY, "0"); return; }
      if (!window.Notification) { state.textContent = state.dataset.unsupported; notify.checked = false; return; }
      const answer = await Notification.requestPermission();
      notify.checked = answer === "granted";
      localStorage.setItem(NOTIFY, notify.checked ? "1" : "0");
      state.textContent = notify.checked ? "" : state.dataset.denied;
    });
  }
})();
