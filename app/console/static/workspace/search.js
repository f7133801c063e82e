// The navigation's search box: the ARIA combobox pattern over a listbox of the leads matching what is
// typed (asked once per pause in typing, not once per key). Arrow keys move through the matches,
// Enter opens the chosen one (the first when none is chosen), Escape closes the list (or clears the
// box when it is closed), and "/" anywhere outside a field puts the cursor in the box.
(function () {
  "use strict";
  var WAIT_MS = 200;
  document.addEventListener("DOMContentLoaded", function () {
    var input = document.getElementById("nav-search");
    if (!input) return;
    var list = document.getElementById("nav-search-results");
    var status = document.getElementById("nav-search-status");
    var timer = null, asked = 0, active = -1;

    function options() { return list.querySelectorAll("[role=option]"); }
    function setOpen(open) {
      list.hidden = !open;
      input.setAttribute("aria-expanded", open ? "true" : "false");
      if (!open) { active = -1; input.removeAttribute("aria-activedescendant"); }
    }
    function choose(index) {
      var found = options();
      if (!found.length) return;
      if (list.hidden) setOpen(true);
      active = (index + found.length) % found.length;
      for (var i = 0; i < found.length; i++) found[i].setAttribute("aria-selected", i === active ? "true" : "false");
      input.setAttribute("aria-activedescendant", found[active].id);
      found[active].scrollIntoView({ block: "nearest" });
    }
    function show(html, typed) {
      list.innerHTML = html;
      active = -1;
      input.removeAttribute("aria-activedescendant");
      var count = options().length;
      status.textContent = count ? count + (count > 1 ? " leads found" : " lead found")
                                 : "No lead matches \u201c" + typed + "\u201d";
      status.classList.toggle("shown", count === 0); // said to everyone; a count only to a screen reader
      setOpen(count > 0);
    }
    function ask() {
      var typed = input.value.trim();
      var mine = ++asked;
      if (typed.length < 2) { list.innerHTML = ""; status.textContent = ""; setOpen(false); return; }
      fetch(input.dataset.url + "?q=" + encodeURIComponent(typed), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { if (mine === asked) show(html, typed); })
        .catch(function () { if (mine === asked) { status.textContent = "Search failed: try again"; setOpen(false); } });
    }
    function open(option) { if (option) window.location.assign(option.dataset.href); }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, WAIT_MS);
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown") { e.preventDefault(); choose(active + 1); }
      else if (e.key === "ArrowUp") { e.preventDefault(); choose(active - 1); }
      else if (e.key === "Enter") {
        var found = options();
        if (found.length) { e.preventDefault(); open(found[active >= 0 ? active : 0]); }
      } else if (e.key === "Escape") {
        e.preventDefault();
        if (!list.hidden) setOpen(false); else { input.value = ""; status.textContent = ""; }
      }
    });
    input.addEventListener("blur", function () { setOpen(false); status.classList.remove("shown"); });
    input.addEventListener("focus", function () { if (options().length) setOpen(true); });
    // mousedown, not click: the click would come after the input's blur has closed the list.
    list.addEventListener("mousedown", function (e) {
      var option = e.target.closest("[role=option]");
      if (option) { e.preventDefault(); open(option); }
    });
    document.addEventListener("keydown", function (e) {
      var t = e.target;
      var typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
      if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); input.focus(); }
    });
  });
})();
