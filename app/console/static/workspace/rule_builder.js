// The rule builder and the sequence page: forms the server draws (each condition a row of pickers,
// each action its own form), which work without this script. With it:
// - a button that adds or removes a row, and a picker whose choice changes the form (a condition's
//   field, an action's type), post the form in the background and swap the new form in place, the
//   focus kept where it was (or on the new row);
// - each change is checked by the page's check endpoint (the API's validation), and an error is
//   shown beside its field only once that field was changed (all of them after Check or Save);
// - the lead picker lists the clinic's leads matching the name typed.
(function () {
  "use strict";
  var form = document.querySelector("form[data-swap]") || document.getElementById("rule-form");
  if (!form) return;
  var PART = form.dataset.part || "builder";
  var status = document.getElementById("check-status");
  var words = document.getElementById("rule-in-words");
  var touched = [];
  var everything = !!document.querySelector("#problems[role=alert]"); // after a submit: every error shows
  var latest = null, timer = null, asked = 0, drawn = 0, edits = 0;

  function post(doing) {
    var body = new FormData(form);
    body.set("do", doing);
    return fetch(form.action, {
      method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": form.dataset.csrf || "" }
    }).then(function (r) { return r.text(); });
  }

  function focusFirst(ids) {
    for (var i = 0; i < ids.length; i++) {
      var target = ids[i] && document.getElementById(ids[i]);
      if (target) { target.focus(); return; }
    }
  }

  // Draw the form again for `doing` (a button's value, or "redraw"), then focus `keep` or the new row.
  function redraw(doing, keep) {
    var mine = ++drawn, before = edits;
    post(doing).then(function (html) {
      if (mine !== drawn) return;
      if (edits !== before && doing === "redraw") { redraw(doing, keep); return; } // typed meanwhile
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById(PART);
      var old = document.getElementById(PART);
      if (!fresh || !old) return;
      // A picker changed: the focus stays where the person is now (they may have moved on meanwhile).
      var here = document.activeElement && document.activeElement !== document.body ? document.activeElement.id : "";
      old.replaceWith(document.adoptNode(fresh));
      var said = doc.getElementById("rule-in-words");
      if (words && said) words.textContent = said.textContent;
      var next = doc.querySelector("[data-focus]");
      focusFirst(keep ? [here, keep] : (next ? next.dataset.focus.split(" ") : []));
      show();
      check();
    }).catch(function () {});
  }

  // A control's path, as its errors name it (whom to tell: users; who gets the lead: policy).
  function pathOf(control) {
    return (control.name || "").replace(/\.whom$/, ".users").replace(/\.to$/, ".policy");
  }
  function shown(path) {
    if (everything) return true;
    return touched.some(function (t) { return t === path || t.indexOf(path + ".") === 0 || path.indexOf(t + ".") === 0; });
  }

  // Each error in its field's slot, if that field was changed; the count in the status line.
  function show() {
    if (!latest) return;
    var count = 0;
    form.querySelectorAll(".field-error[data-error-for]").forEach(function (slot) {
      var path = slot.dataset.errorFor;
      var messages = latest[path] && shown(path) ? latest[path] : [];
      slot.textContent = messages.join(" ");
      count += messages.length ? 1 : 0;
      var control = form.querySelector('[aria-describedby~="' + slot.id + '"]');
      if (control) {
        if (messages.length) control.setAttribute("aria-invalid", "true"); else control.removeAttribute("aria-invalid");
      }
    });
    if (!status) return;
    var total = Object.keys(latest).length;
    status.textContent = count ? count + (count === 1 ? " problem" : " problems") + " to fix"
      : total ? "" : "No problems: this rule can be saved.";
    status.className = count ? "warning" : "";
  }

  function check() {
    if (!form.dataset.check) return;
    var mine = ++asked;
    fetch(form.dataset.check, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": form.dataset.csrf || "" }
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (json) {
      if (!json || mine !== asked) return;
      latest = json.errors || {};
      if (words && json.words) words.textContent = json.words;
      show();
    }).catch(function () {});
  }
  function soon() { clearTimeout(timer); timer = setTimeout(check, 250); }

  function touch(control) {
    var path = pathOf(control);
    if (path && touched.indexOf(path) < 0) touched.push(path);
  }

  form.addEventListener("click", function (e) {
    var button = e.target.closest("button.redraw");
    if (!button) return;
    e.preventDefault();
    redraw(button.value);
  });
  form.addEventListener("change", function (e) {
    var control = e.target;
    if (control.id === "lead_q") return;
    touch(control);
    if (control.classList.contains("redraw")) redraw("redraw", control.id); else soon();
  });
  form.addEventListener("input", function (e) {
    if (e.target.id === "lead_q") { findSoon(); return; }
    edits++;
    touch(e.target);
    soon();
  });
  // Enter in a field checks (it would press the form's first button: an "Add condition").
  form.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.key !== "Enter" || t.tagName !== "INPUT" || t.type === "checkbox" || t.type === "radio") return;
    e.preventDefault();
    if (t.id === "lead_q") find(); else { touch(t); check(); }
  });

  // The lead picker: the clinic's leads matching the name typed, as radio buttons.
  var finder = document.getElementById("lead_q");
  var found = document.getElementById("lead-choices");
  var finding = 0, findTimer = null;
  function find() {
    if (!finder || !found) return;
    var typed = finder.value.trim(), mine = ++finding;
    if (typed.length < 2) { found.textContent = ""; return; }
    fetch(finder.dataset.url + "?q=" + encodeURIComponent(typed), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { if (mine === finding) found.innerHTML = html; })
      .catch(function () {});
  }
  function findSoon() { clearTimeout(findTimer); findTimer = setTimeout(find, 250); }

  var start = form.dataset.focus;
  if (start) focusFirst(start.split(" "));
})();
