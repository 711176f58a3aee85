// Conversation page: fetch new texts every few seconds, and count a reply's SMS segments.
(function () {
  "use strict";
  var box = document.getElementById("messages");
  if (box && box.dataset.poll) {
    var poll = function () {
      fetch(box.dataset.poll + "?after=" + encodeURIComponent(box.dataset.after), {
        credentials: "same-origin", headers: { "Accept": "text/html" }
      }).then(function (r) {
        if (r.redirected || !r.ok) { return ""; }
        return r.text();
      }).then(function (html) {
        if (!html || !html.trim()) { return; }
        box.insertAdjacentHTML("beforeend", html);
        var items = box.querySelectorAll("[data-id]");
        box.dataset.after = items[items.length - 1].dataset.id;
      }).catch(function () {});
    };
    setInterval(poll, 3000);
  }
  // GSM-7 basic set and its extension (each extension character takes two septets).
  var basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var ext = "^{}\\[~]|€\f";
  var area = document.querySelector("textarea[data-counter]");
  if (area) {
    var out = document.getElementById(area.dataset.counter);
    var count = function () {
      var text = area.value, septets = 0, gsm = true;
      for (var i = 0; i < text.length; i++) {
        var c = text.charAt(i);
        if (basic.indexOf(c) >= 0) { septets += 1; }
        else if (ext.indexOf(c) >= 0) { septets += 2; }
        else { gsm = false; }
      }
      var n = gsm ? (septets <= 160 ? 1 : Math.ceil(septets / 153))
                  : (text.length <= 70 ? 1 : Math.ceil(text.length / 67));
      var msg = text.length ? n + " segment" + (n === 1 ? "" : "s") : "";
      if (!gsm) { msg += ": has characters outside GSM-7 (sent as Unicode, costs more)"; }
      if (n > 2) { msg += ": longer than 2 segments"; }
      out.textContent = msg;
    };
    area.addEventListener("input", count);
  }
})();
