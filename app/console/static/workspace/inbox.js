// The team inbox: its list re-read when the user's event stream (live.js) tells of a message, a
// delivery status or a read mark (the nav's count is inbox_count.js's).
(function () {
  "use strict";
  var WAIT_MS = 300; // a message and its status come in bursts: one re-read per burst
  var timer = null;

  function refresh() {
    var live = document.getElementById("inbox-live");
    if (!live) return;
    fetch(live.dataset.url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        live.innerHTML = html;
      })
      .catch(function () { /* the next event tries again */ });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, WAIT_MS);
  }

  document.addEventListener("console:live", function (e) {
    if (/^(conversation\.|reply\.received|lead\.assigned)/.test(e.detail.type)) soon();
  });
  // The stream (re)opened: what came while it was closed, or before it first opened.
  document.addEventListener("console:live-open", soon);
})();
