// The pipeline board: a card dragged onto another column is moved there by the same POST as the move
// form (with the CSRF token); a refused move says why beside the card, a done one reloads the board
// (its counts and values), keeping the filters of the URL. A card's "Move…" link opens the page's one
// move form in a dialog for that card (without this script, the link opens the form on a page of its
// own), offering only the stages the card may move to (its column's data-targets: the next stage
// first and chosen, lost last); focus goes into the dialog and, once it closes (Escape, Cancel), back
// to the card's link. A reason the chosen stage needs, left empty, is said in the form: nothing is sent.
(function () {
  "use strict";
  var dragged = null;

  function say(card, text) {
    card.querySelector(".refusal").textContent = text;
  }

  function moveUrl(card) {
    return card.querySelector("a.move-open").href;
  }

  function move(card, stage, csrf) {
    var body = new URLSearchParams({ stage: stage, csrf_token: csrf });
    return fetch(moveUrl(card), {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf },
      body: body
    }).then(function (r) {
      var json = (r.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (!json) {  // logged out, or the page's CSRF token too old: the answer is a page, not a move
        say(card, "The move was not made (" + r.status + "): reload the page and try again.");
        return null;
      }
      return r.json().then(function (answer) {
        if (r.ok) {
          window.location.reload();
        } else {
          say(card, answer.error || "The move was refused.");
        }
      });
    }).catch(function () { say(card, "The move did not reach the server: try again."); });
  }

  // A move's reason asked only where the pipeline asks one: "why lost" for lost, "why they hesitate"
  // for pending_decision (without this script both show, and the server says which is needed).
  function showReasons(form) {
    var stage = form.querySelector("select[name=stage]").value;
    form.querySelectorAll(".why").forEach(function (label) {
      label.hidden = label.dataset.for !== stage;
    });
    form.querySelectorAll(".why-missing").forEach(function (said) { said.hidden = true; });
  }

  // The chosen stage's reason left empty: say so beside it and keep the form (true: not to be sent).
  function whyMissing(form) {
    var stage = form.querySelector("select[name=stage]").value;
    var why = form.querySelector('.why[data-for="' + stage + '"] select');
    if (!why || why.value) return false;
    form.querySelector('.why-missing[data-for="' + stage + '"]').hidden = false;
    why.focus();
    return true;
  }

  // The stages a card may move to, the next one first (its column's data-targets).
  function targetsOf(card) {
    return card.closest(".column").dataset.targets.split(" ").filter(Boolean);
  }

  // The dialog's form set for `card`: its POST, its name, only its targets offered (in their order),
  // `stage` (or the next one) chosen.
  function openFor(dialog, card, stage) {
    var form = dialog.querySelector("form.move");
    var select = form.querySelector("select[name=stage]");
    var targets = targetsOf(card);
    form.action = moveUrl(card);
    dialog.querySelector(".move-lead").textContent = card.querySelector("a.name").textContent;
    Array.prototype.slice.call(select.options).forEach(function (option) {
      var offered = targets.indexOf(option.value) !== -1;
      option.disabled = !offered;
      option.hidden = !offered;
    });
    targets.forEach(function (slug) {  // in the targets' order: the next stage first, lost last
      var option = select.querySelector('option[value="' + slug + '"]');
      if (option) select.appendChild(option);
    });
    select.value = stage || targets[0];
    form.querySelectorAll(".why select").forEach(function (why) { why.value = ""; });
    showReasons(form);
    dialog.returnFocus = card.querySelector("a.move-open");
    dialog.showModal();
  }

  // A drop on a stage that needs a reason (lost, pending_decision) opens the move dialog there and
  // asks the reason, rather than sending a move the pipeline would refuse for the lack of one.
  function askWhy(dialog, card, stage) {
    var why = dialog && dialog.querySelector('.why[data-for="' + stage + '"] select');
    if (!why || targetsOf(card).indexOf(stage) === -1) return false;  // refused anyway: the server says why
    say(card, "Choose why, then Move.");
    openFor(dialog, card, stage);
    why.focus();
    return true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.move").forEach(function (form) {
      showReasons(form);
      form.querySelector("select[name=stage]").addEventListener("change", function () { showReasons(form); });
      form.addEventListener("submit", function (e) {
        if (whyMissing(form)) e.preventDefault();
      });
    });
    var board = document.getElementById("board");
    if (!board) return;
    var dialog = document.getElementById("move-dialog");
    if (dialog) {
      board.addEventListener("click", function (e) {
        var link = e.target.closest && e.target.closest("a.move-open");
        if (!link) return;
        e.preventDefault();
        openFor(dialog, link.closest(".card"), null);
      });
      dialog.querySelector("button.cancel").addEventListener("click", function () { dialog.close(); });
      dialog.addEventListener("close", function () {
        if (dialog.returnFocus) dialog.returnFocus.focus();
      });
    }
    var csrf = board.dataset.csrf;
    board.addEventListener("dragstart", function (e) {
      var card = e.target.closest && e.target.closest(".card[draggable=true]");
      if (!card) return;
      dragged = card;
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", card.dataset.leadId);
    });
    board.querySelectorAll(".column").forEach(function (column) {
      column.addEventListener("dragover", function (e) {
        if (!dragged) return;
        e.preventDefault();
        column.classList.add("over");
      });
      column.addEventListener("dragleave", function () { column.classList.remove("over"); });
      column.addEventListener("drop", function (e) {
        e.preventDefault();
        column.classList.remove("over");
        var card = dragged;
        dragged = null;
        if (!card || card.dataset.stage === column.dataset.stage) return;
        say(card, "");
        if (askWhy(dialog, card, column.dataset.stage)) return;
        move(card, column.dataset.stage, csrf);
      });
    });
    board.addEventListener("dragend", function () { dragged = null; });
  });
})();
