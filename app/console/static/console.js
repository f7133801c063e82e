// Bulk job progress bars: poll each open job's progress and move its bar until it ends.
(function () {
  "use strict";
  var OPEN = { pending: true, running: true };

  function render(box, p) {
    box.dataset.status = p.status;
    var bar = box.querySelector(".bar");
    bar.style.width = p.percent + "%";
    bar.setAttribute("aria-valuenow", p.done + p.failed);
    box.querySelector(".status").textContent = p.status;
    box.querySelector(".done").textContent = p.done;
    box.querySelector(".failed").textContent = p.failed;
    box.querySelector(".total").textContent = p.total;
    box.querySelector(".rate").textContent = p.rate;
    box.querySelector(".left").textContent = p.seconds_left === null ? "\u2014" : p.seconds_left + " s left";
  }

  function poll(box) {
    if (!OPEN[box.dataset.status]) return;
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (p) render(box, p);
        setTimeout(function () { poll(box); }, 1000);
      })
      .catch(function () { setTimeout(function () { poll(box); }, 3000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".progress[data-progress-url]").forEach(poll);
  });
})();
