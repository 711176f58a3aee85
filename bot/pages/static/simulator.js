// The phone simulator: sign each text on the server, POST it to /twilio/sms like Twilio,
// and redraw the chat and timeline from what the bot stored.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const number = () => $("phone-number").value.trim();
  let last = "";

  async function api(path, data) {
    const response = await fetch("/simulator/" + path, {
      method: "POST", headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify(data || {}),
    });
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  async function text(body) {
    const signed = await api("sign", {phone: number(), body: body});
    const response = await fetch(signed.path, {
      method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signed.signature},
      body: new URLSearchParams(signed.params),
    });
    if (!response.ok) $("status").textContent = "webhook answered " + response.status;
    await refresh();
  }

  function el(tag, cls, content) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  // Links in texts (the journal link) open in a new tab, as a phone would open them.
  function bubble(body) {
    const node = el("div", "bubble");
    body.split(/(https?:\/\/\S+)/).forEach((part, i) => {
      if (i % 2 === 0) { node.appendChild(document.createTextNode(part)); return; }
      const a = el("a", "", part);
      a.href = part;
      a.target = "_blank";
      a.rel = "noreferrer noopener";
      node.appendChild(a);
    });
    return node;
  }

  function draw(state) {
    const key = JSON.stringify(state);
    if (key === last) return;
    last = key;
    $("clock-kind").textContent = state.clock;
    $("now").textContent = state.now_local || new Date(state.now).toUTCString();
    const p = state.participant;
    $("status").textContent = p
      ? `${p.status} · ${p.timezone}${p.flow ? " · in " + p.flow : ""}`
      : "Not enrolled yet: press Enroll, then reply YES.";
    const chat = $("chat");
    const atBottom = chat.scrollTop + chat.clientHeight >= chat.scrollHeight - 30;
    chat.replaceChildren();
    for (const m of state.messages) {
      const row = el("div", `row ${m.direction}${m.nudge ? " nudge" : ""}`);
      row.dataset.key = m.key || "";
      row.appendChild(bubble(m.body || "(erased)"));
      const bits = [`${m.segments} segment${m.segments === 1 ? "" : "s"}`, m.encoding];
      if (m.direction === "out") bits.push(m.nudge ? "nudge" : (m.status === "reply" ? "reply" : "REST " + m.status));
      bits.push(m.at);
      row.appendChild(el("div", "meta", bits.join(" · ")));
      chat.appendChild(row);
    }
    if (atBottom) chat.scrollTop = chat.scrollHeight;
    const body = document.querySelector("#timeline tbody");
    body.replaceChildren();
    for (const r of state.timeline) {
      const tr = el("tr");
      tr.dataset.kind = r.kind;
      tr.dataset.status = r.status;
      tr.appendChild(el("td", "", r.kind));
      tr.appendChild(el("td", "", r.status === "pending" ? r.due : (r.sent || r.due)));
      tr.appendChild(el("td", "status-" + r.status, r.status));
      const cell = el("td");
      if (r.status === "pending") {
        const button = el("button", "send-now", "Send now");
        button.type = "button";
        button.addEventListener("click", () => act("send-now", {id: r.id}));
        cell.appendChild(button);
      }
      tr.appendChild(cell);
      body.appendChild(tr);
    }
  }

  async function refresh() {
    const response = await fetch("/simulator/state?phone=" + encodeURIComponent(number()));
    if (response.ok) draw(await response.json());
  }

  async function act(path, data) {
    try {
      const result = await api(path, {phone: number(), ...data});
      $("clock-note").textContent = result.note ||
        (result.sent !== undefined ? `${result.sent} nudge${result.sent === 1 ? "" : "s"} sent` : "");
    } catch (error) {
      $("clock-note").textContent = String(error);
    }
    await refresh();
  }

  $("enroll").addEventListener("click", async () => {
    try {
      const result = await api("enroll", {phone: number(), timezone: $("tz").value.trim()});
      if (!result.ok) $("status").textContent = result.note;
    } catch (error) {
      $("status").textContent = "Enroll failed: check the number and the time zone";
      return;
    }
    await refresh();
  });
  $("compose-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = $("compose").value;
    if (!body.trim()) return;
    $("compose").value = "";
    await text(body);
  });
  for (const chip of document.querySelectorAll(".chip")) {
    chip.addEventListener("click", () => text(chip.dataset.text));
  }
  for (const button of document.querySelectorAll("[data-step]")) {
    button.addEventListener("click", () => act("clock", {step: button.dataset.step}));
  }
  $("phone-number").addEventListener("change", () => { last = ""; refresh(); });
  refresh();
  setInterval(refresh, 1000);
})();
