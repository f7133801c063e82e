// The merge-field picker of a message template's form (Settings, Message templates): each field's
// Insert button puts it at the cursor of the subject or text last focused in its section (the text
// when none was yet), and gives that field the focus back. Without this script the buttons stay
// hidden and the table lists the fields to type.
(function () {
  "use strict";

  function insert(field, text) {
    var start = typeof field.selectionStart === "number" ? field.selectionStart : field.value.length;
    var end = typeof field.selectionEnd === "number" ? field.selectionEnd : start;
    field.setRangeText(text, start, end, "end");
    field.focus();
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-merge-picker]").forEach(function (picker) {
      var section = picker.closest("section") || document;
      var targets = section.querySelectorAll("[data-merge-target]");
      if (!targets.length) return;
      var last = targets[targets.length - 1];
      targets.forEach(function (field) {
        field.addEventListener("focus", function () { last = field; });
      });
      picker.querySelectorAll("button[data-insert]").forEach(function (button) {
        button.hidden = false;
        button.addEventListener("click", function () { insert(last, button.dataset.insert); });
      });
    });
  });
})();
