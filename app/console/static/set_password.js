// A setup link carries its one-time token in the fragment (#token=...), which no server sees: the
// page puts it in the form and hides that field, then takes it out of the address bar.
(function () {
  "use strict";
  var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (!match) return;
  document.addEventListener("DOMContentLoaded", function () {
    var field = document.getElementById("token");
    if (!field) return;
    field.value = decodeURIComponent(match[1]);
    document.getElementById("field-token").hidden = true;
    window.history.replaceState(null, "", window.location.pathname);
  });
})();
