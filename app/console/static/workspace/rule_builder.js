// The rule builder: rows of field / operator / value and groups (all, any, not) drawn from the
// rule language's own vocabulary (the page hands it over), written back as JSON into the form's
// fields (which are the whole form with JavaScript off), and checked as it is built by the page's
// check endpoint (the API's validation): each error shown beside the row its path names.
(function () {
  "use strict";
  var form = document.getElementById("rule-form");
  var box = document.getElementById("conditions-builder");
  if (!form || !box) return;
  var words = JSON.parse(box.dataset.vocabulary);
  var conditionsField = document.getElementById("conditions");
  var actionsField = document.getElementById("actions");
  var state;
  try {
    state = { conditions: JSON.parse(conditionsField.value || "[]"), actions: JSON.parse(actionsField.value || "[]") };
  } catch (e) {
    return; // JSON typed by hand that does not parse: leave the plain form to say so
  }
  if (!Array.isArray(state.conditions) || !Array.isArray(state.actions)) return;
  document.querySelectorAll(".json-part").forEach(function (part) { part.hidden = true; });

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }
  function select(options, value, label) {
    var s = el("select", { "aria-label": label });
    options.forEach(function (o) { s.appendChild(el("option", { value: o, text: o })); });
    s.value = value;
    return s;
  }
  function button(text, onClick) {
    var b = el("button", { type: "button", text: text });
    b.addEventListener("click", onClick);
    return b;
  }
  function groupOf(item) {
    return ["all", "any", "not"].find(function (k) { return item && typeof item === "object" && k in item; });
  }
  function shown(value) {
    if (value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }
  function parsed(text) {
    if (text.trim() === "") return undefined;
    try { return JSON.parse(text); } catch (e) { return text; }
  }
  function newCondition() { return { field: words.fields[0], operator: "equals", value: "" }; }
  var focusPath = null; // after a redraw, the control to give the focus back to

  function conditionRow(item, path, label, holder) {
    var row = el("div", { class: "condition-row", "data-path": path });
    var field = select(words.fields, item.field, label + ": field");
    var operator = select(words.operators, item.operator, label + ": operator");
    var value = el("input", { type: "text", "aria-label": label + ": value", value: shown(item.value),
      placeholder: words.list_operators.indexOf(item.operator) >= 0 ? '["a", "b"]' : "value" });
    field.addEventListener("change", function () { item.field = field.value; changed(); });
    operator.addEventListener("change", function () { item.operator = operator.value; changed(); });
    value.addEventListener("input", function () {
      var v = parsed(value.value);
      if (v === undefined) delete item.value; else item.value = v;
      changed();
    });
    row.appendChild(field);
    row.appendChild(operator);
    row.appendChild(value);
    row.appendChild(button("Remove " + label, function () { holder.remove(); focusPath = "add"; redraw(); }));
    row.appendChild(el("p", { class: "field-error", "data-error-for": path, "aria-live": "polite" }));
    return row;
  }

  // items: a list; each entry is drawn with a remover. depth: how deep the groups holding it are.
  function drawList(items, path, depth, into, label) {
    items.forEach(function (item, i) {
      var holder = { remove: function () { items.splice(i, 1); } };
      into.appendChild(drawItem(item, path + "." + i, depth, label + " " + (i + 1), holder, function (next) { items[i] = next; }));
    });
    into.appendChild(adders(items, path, depth, label));
  }

  function adders(items, path, depth, label) {
    var bar = el("div", { class: "adders" });
    label = "group " + label.split(" ").slice(1).join(".");
    bar.appendChild(button("Add condition" + (path === "conditions" ? "" : " to " + label), function () {
      items.push(newCondition()); focusPath = path + "." + (items.length - 1); redraw();
    }));
    if (depth < words.max_group_depth) {
      bar.appendChild(button("Add group" + (path === "conditions" ? "" : " to " + label), function () {
        items.push({ any: [newCondition()] }); focusPath = path + "." + (items.length - 1); redraw();
      }));
    }
    return bar;
  }

  function drawItem(item, path, depth, label, holder, replace) {
    var kind = groupOf(item);
    if (!kind) return conditionRow(item, path, "Condition " + label.split(" ").slice(1).join("."), holder);
    var set = el("fieldset", { class: "group", "data-path": path });
    var legend = el("legend", { text: "Group " + label.split(" ").slice(1).join(".") });
    set.appendChild(legend);
    var kindSelect = select(words.groups, kind, "Group " + label.split(" ").slice(1).join(".") + ": kind");
    kindSelect.addEventListener("change", function () {
      var inner = kind === "not" ? [item.not] : item[kind];
      var next = {};
      next[kindSelect.value] = kindSelect.value === "not" ? inner[0] : inner;
      replace(next); focusPath = path; redraw();
    });
    set.appendChild(kindSelect);
    set.appendChild(button("Remove group " + label.split(" ").slice(1).join("."), function () { holder.remove(); focusPath = "add"; redraw(); }));
    set.appendChild(el("p", { class: "field-error", "data-error-for": path + "." + kind }));
    if (kind === "not") {
      var only = { remove: function () { replace({ all: [] }); } };
      set.appendChild(drawItem(item.not, path + ".not", depth + 1, label + " 1", only, function (next) { item.not = next; }));
    } else {
      drawList(item[kind], path + "." + kind, depth + 1, set, label);
    }
    return set;
  }

  var actionsBox = document.getElementById("actions-builder");
  function drawActions() {
    actionsBox.textContent = "";
    state.actions.forEach(function (action, i) {
      var label = "Action " + (i + 1);
      var path = "actions." + i;
      var row = el("div", { class: "action-row", "data-path": path });
      var type = select(words.action_types, action.type, label + ": type");
      var delay = action.delay || { amount: 0, unit: "minutes" };
      var amount = el("input", { type: "number", min: "0", "aria-label": label + ": after (amount)", value: String(delay.amount) });
      var unit = select(words.delay_units, delay.unit, label + ": after (unit)");
      var rest = {};
      Object.keys(action).forEach(function (k) { if (k !== "type" && k !== "delay") rest[k] = action[k]; });
      var details = el("input", { type: "text", class: "details", "aria-label": label + ": details (JSON: title, task_type, body...)", value: JSON.stringify(rest) });
      function write() {
        var next = { type: type.value };
        var more = parsed(details.value);
        if (more && typeof more === "object" && !Array.isArray(more)) Object.keys(more).forEach(function (k) { next[k] = more[k]; });
        else if (more !== undefined) next.details = more; // the check names it
        if (amount.value !== "" && (Number(amount.value) !== 0 || unit.value !== "minutes")) next.delay = { amount: Number(amount.value), unit: unit.value };
        state.actions[i] = next;
        changed();
      }
      [type, unit].forEach(function (c) { c.addEventListener("change", write); });
      [amount, details].forEach(function (c) { c.addEventListener("input", write); });
      row.appendChild(type); row.appendChild(el("span", { text: "after" })); row.appendChild(amount); row.appendChild(unit); row.appendChild(details);
      row.appendChild(button("Remove " + label, function () { state.actions.splice(i, 1); redraw(); }));
      row.appendChild(el("p", { class: "field-error", "data-error-for": path, "aria-live": "polite" }));
      actionsBox.appendChild(row);
    });
    actionsBox.appendChild(button("Add action", function () { state.actions.push({ type: "create_task", title: "" }); redraw(); }));
  }

  function redraw() {
    box.textContent = "";
    drawList(state.conditions, "conditions", 0, box, "condition");
    drawActions();
    write();
    if (focusPath) {
      var target = focusPath === "add" ? box.querySelector(".adders button")
        : box.querySelector('[data-path="' + focusPath + '"] select, [data-path="' + focusPath + '"] input');
      if (target) target.focus();
      focusPath = null;
    }
    check();
  }

  function write() {
    conditionsField.value = JSON.stringify(state.conditions);
    actionsField.value = JSON.stringify(state.actions);
  }

  var timer = null;
  var sent = 0;
  function changed() { write(); clearTimeout(timer); timer = setTimeout(check, 250); }

  // Each error beside the deepest row or group its path names (conditions.0.any.1.value -> row conditions.0.any.1).
  function place(errors) {
    document.querySelectorAll("#rule-form .field-error[data-error-for]").forEach(function (p) {
      if (p.closest("[data-path]")) p.textContent = "";
    });
    var count = 0;
    Object.keys(errors).forEach(function (path) {
      var parts = path.split(".");
      for (var n = parts.length; n > 0; n--) {
        var holder = form.querySelector('[data-path="' + parts.slice(0, n).join(".") + '"]');
        if (holder) {
          var slot = holder.querySelector(":scope > .field-error");
          if (slot) { slot.textContent += path + ": " + errors[path].join("; ") + " "; count++; return; }
        }
      }
      count++;
    });
    var status = document.getElementById("check-status");
    status.textContent = count ? count + " problem" + (count === 1 ? "" : "s") + " to fix" : "No problems: this rule can be saved.";
    status.className = count ? "warning" : "";
  }

  function check() {
    var mine = ++sent;
    var body = new FormData(form);
    fetch(form.dataset.check, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": form.dataset.csrf }
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (json) {
      if (json && mine === sent) place(json.errors || {});
    }).catch(function () {});
  }

  form.addEventListener("input", function (e) { if (e.target.name === "name") changed(); });
  form.addEventListener("change", function (e) { if (e.target.name === "trigger") changed(); });
  redraw();
})();
