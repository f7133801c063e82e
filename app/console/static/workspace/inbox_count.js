// The count of the user's unread threads beside the nav's Inbox link: read once the page is drawn,
// and again when the user's event stream (live.js) tells of a message or a read mark.
(function () {
  "use strict";
  var timer = null;

  function show(n) {
    var link = document.getElementById("nav-inbox");
    if (!link) return;
    var badge = document.getElementById("nav-inbox-count");
    if (!n) { if (badge) badge.remove(); return; }
    if (!badge) {
      badge = document.createElement("span");
      badge.id = "nav-inbox-count";
      badge.className = "count";
      link.appendChild(document.createTextNode(" "));
      link.appendChild(badge);
    }
    badge.textContent = String(n);
    badge.setAttribute("aria-label", n + " unread");
  }

  function read() {
    var link = document.getElementById("nav-inbox");
    if (!link) return;
    fetch(link.dataset.countUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) { if (answer) show(answer.unread); })
      .catch(function () { /* the next event tries again */ });
  }

  window.consoleInboxCount = read;
  document.addEventListener("DOMContentLoaded", read);
  document.addEventListener("console:live", function (e) {
    if (!/^(conversation\.|reply\.received)/.test(e.detail.type)) return;
    clearTimeout(timer);
    timer = setTimeout(read, 300);
  });
})();
