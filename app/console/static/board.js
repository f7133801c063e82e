// The pipeline board: a card dragged onto another column is moved there by the same POST as its
// "Move to" form (with the CSRF token); a refused move says why beside the card, a done one reloads
// the board (its counts and values), keeping the filters of the URL.
(function () {
  "use strict";
  var dragged = null;

  function say(card, text) {
    card.querySelector(".refusal").textContent = text;
  }

  function move(card, stage, csrf) {
    var body = new URLSearchParams({ stage: stage, csrf_token: csrf });
    return fetch(card.dataset.moveUrl, {
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
  }

  // A drop on a stage that needs a reason (lost, pending_decision) opens the card's menu there and
  // asks the reason, rather than sending a move the pipeline would refuse for the lack of one.
  function askWhy(card, stage) {
    var form = card.querySelector("form.move");
    var why = form && form.querySelector('.why[data-for="' + stage + '"] select');
    if (!why) return false;
    form.querySelector("select[name=stage]").value = stage;
    showReasons(form);
    why.focus();
    say(card, "Choose why, then Move.");
    return true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var board = document.getElementById("board");
    if (!board) return;
    board.querySelectorAll("form.move").forEach(function (form) {
      showReasons(form);
      form.querySelector("select[name=stage]").addEventListener("change", function () { showReasons(form); });
    });
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
        if (askWhy(card, column.dataset.stage)) return;
        move(card, column.dataset.stage, csrf);
      });
    });
    board.addEventListener("dragend", function () { dragged = null; });
  });
})();
