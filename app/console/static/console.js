// Bulk job progress bars: one request for every open job on the page, every POLL_MS, until they end
// (one request, not one per bar: the console shares the API's per-address rate limit).
(function () {
  "use strict";
  var OPEN = { pending: true, running: true };
  var POLL_MS = 2000;

  function render(box, p) {
    box.dataset.status = p.status;
    var bar = box.querySelector(".bar");
    bar.style.width = p.percent + "%";
    bar.setAttribute("aria-valuenow", p.done + p.failed);
    box.querySelector(".status").textContent = p.said || ""; // p.status in words (wording.py)
    box.querySelector(".done").textContent = p.done;
    box.querySelector(".failed").textContent = p.failed;
    box.querySelector(".total").textContent = p.total;
    box.querySelector(".rate").textContent = p.rate;
    box.querySelector(".left").textContent = p.seconds_left === null ? "\u2014" : p.seconds_left + " s left";
  }

  function openBoxes() {
    return Array.prototype.filter.call(document.querySelectorAll(".progress[data-id]"), function (box) {
      return OPEN[box.dataset.status];
    });
  }

  function poll(url) {
    var boxes = openBoxes();
    if (!boxes.length) return;
    var ids = boxes.map(function (box) { return box.dataset.id; }).join(",");
    fetch(url + "?ids=" + encodeURIComponent(ids), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        (answer ? answer.jobs : []).forEach(function (p) {
          document.querySelectorAll('.progress[data-id="' + p.id + '"]').forEach(function (box) { render(box, p); });
        });
      })
      .catch(function () {})
      .then(function () { setTimeout(function () { poll(url); }, POLL_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // The width the page was rendered with (the CSP allows no inline style attribute).
    document.querySelectorAll(".progress .bar[data-percent]").forEach(function (bar) {
      bar.style.width = bar.dataset.percent + "%";
    });
    var url = document.body.dataset.progressUrl;
    if (url) poll(url);
  });
})();

// A table wider than a phone scrolls inside its own box (console.css); a box that scrolls must take
// the keyboard's focus, or a keyboard user could never see its right-hand columns.
(function () {
  "use strict";
  function focusableWhenScrolling() {
    document.querySelectorAll("main table").forEach(function (table) {
      if (table.scrollWidth > table.clientWidth) {
        table.setAttribute("tabindex", "0");
      } else {
        table.removeAttribute("tabindex");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", focusableWhenScrolling);
  window.addEventListener("resize", focusableWhenScrolling);
})();

// A button that shows or hides the part of the page it controls (a form kept out of the way until
// wanted, as on the lead page): its aria-expanded says which, for a screen reader too.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.toggle[aria-controls]");
    if (!button) return;
    var part = document.getElementById(button.getAttribute("aria-controls"));
    if (!part) return;
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    part.hidden = !open;
    if (open) {
      var first = part.querySelector("input:not([type=hidden]), select, textarea, button");
      if (first) first.focus();
    }
  });
})();
