// Quick entry: the possible duplicates of what is typed so far, asked for as the user types (a
// fragment of the page's own GET endpoint), and the save button that sends the form once.
(function () {
  "use strict";
  var WAIT_MS = 250; // after the last keystroke: one request per pause, not one per key
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("quick-entry");
    if (!form) return;
    var box = document.getElementById("duplicates");
    var timer = null, asked = 0;
    function ask() {
      var params = new URLSearchParams();
      ["first_name", "last_name", "phone", "email"].forEach(function (name) {
        params.set(name, form.elements[name].value);
      });
      var mine = ++asked;
      fetch(form.dataset.duplicatesUrl + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) { if (mine === asked) box.innerHTML = html; })
        .catch(function () { /* the check is a help; the save checks again */ });
    }
    ["first_name", "last_name", "phone", "email"].forEach(function (name) {
      form.elements[name].addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(ask, WAIT_MS);
      });
    });
    form.elements.notes.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener("submit", function () {
      // A second press while the first is on its way sends nothing (the key would answer it anyway).
      var button = document.getElementById("save-lead");
      setTimeout(function () { button.disabled = true; }, 0);
    });
    if (form.elements.phone.value || form.elements.email.value) ask();
  });
})();
