// Today: one key per action (N takes the next call; 1-7 log the call's outcome), and the page's live
// part re-read when the user's event stream (live.js) tells of something new: a lead assigned, a
// task made (the engine's next step after a logged call), a reply, a reminder.
(function () {
  "use strict";
  var WAIT_MS = 300; // events come in bursts (a lead assigned, then its task): one re-read per burst
  var timer = null;

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function refresh() {
    var live = document.getElementById("today-live");
    if (!live) return;
    fetch(live.dataset.url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) live.innerHTML = html; })
      .catch(function () { /* the next event tries again */ });
  }

  function assigned(item) {
    var box = document.getElementById("just-assigned");
    if (!box || !item.lead) return;
    var li = document.createElement("li");
    li.dataset.leadId = item.lead.id;
    var a = document.createElement("a");
    a.href = box.dataset.leadUrl + item.lead.id;
    a.textContent = (item.lead.first_name + " " + item.lead.last_name).trim();
    li.appendChild(a);
    var list = document.getElementById("assigned-now");
    list.insertBefore(li, list.firstChild);
    document.getElementById("assigned-empty").hidden = true;
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    var button = null;
    if (e.key === "n" || e.key === "N") button = document.getElementById("take-next-call");
    else if (/^[1-9]$/.test(e.key)) button = document.querySelector("#outcomes button[data-key='" + e.key + "']");
    if (button) { e.preventDefault(); button.click(); }
  });

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, WAIT_MS);
  }

  document.addEventListener("console:live", function (e) {
    if (e.detail.type === "lead.assigned") assigned(e.detail);
    soon();
  });
  // The stream (re)opened: what the engine made while it was closed, or before it first opened.
  document.addEventListener("console:live-open", soon);
})();
