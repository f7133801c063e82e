// The family's own timezone: the page lists times in it (sent as ?tz=, the clinic's when absent).
(function () {
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  var url = new URL(window.location.href);
  if (zone && !url.searchParams.get("tz")) {
    url.searchParams.set("tz", zone);
    window.location.replace(url.toString());
  }
})();
