// New items for the signed-in user as they happen, without a reload: the user's live event stream
// (GET /api/me/events on the stream process, docs/guides/event-stream.md) through EventSource.
// EventSource cannot send headers: the page asks the console for a short-lived stream token
// (POST /console/stream-token, the session cookie and the CSRF header), and for a new one whenever
// the stream closes (a token opens one stream, within a minute; a stream ends after its longest life
// or when the user changes), resuming after the last event it showed.
(function () {
  "use strict";
  var RETRY_MS = 3000;
  var TYPES = ["lead.assigned", "task.assigned", "task.claimed", "task.due_soon", "task.overdue",
    "reply.received", "sla.warning", "sla.breach", "notification",
    "conversation.message", "conversation.read", "conversation.status"];
  // Said to the page's own parts only (the inbox re-reads its list), not listed as news.
  var QUIET = { "conversation.read": true, "conversation.status": true };
  var lastId = null;
  var words = { events: {}, other: "", status: {} };

  // The page hands in the wording table's sentences (data-words, app/console/wording.py
  // LIVE_EVENTS): an event reads "Task assigned: Maria Lopez", never its type's code.
  function readWords(box) {
    try { words = JSON.parse(box.dataset.words || "{}"); } catch (e) { /* keep the empty words */ }
    words.events = words.events || {};
    words.status = words.status || {};
    words.other = words.other || "";
  }

  function whom(item) {
    if (item.lead) return (item.lead.first_name + " " + item.lead.last_name).trim();
    if (item.task && item.task.title) return item.task.title;
    if (item.notification && item.notification.title) return item.notification.title;
    return "";
  }

  function describe(item) {
    var sentence = words.events[item.type] || words.other;
    var about = whom(item);
    return about ? sentence + ": " + about : sentence;
  }

  function show(box, message) {
    var item = JSON.parse(message.data);
    if (QUIET[item.type]) {
      document.dispatchEvent(new CustomEvent("console:live", { detail: item }));
      return;
    }
    var li = document.createElement("li");
    li.dataset.id = item.id;
    li.dataset.type = item.type;
    li.textContent = describe(item);
    var list = box.querySelector("#live-items");
    list.insertBefore(li, list.firstChild);
    var count = box.querySelector("#live-count");
    count.textContent = String(Number(count.textContent) + 1);
    var said = document.getElementById("live-said"); // a screen reader hears it, the list being closed
    if (said) said.textContent = li.textContent;
    document.dispatchEvent(new CustomEvent("console:live", { detail: item })); // for the page's own parts
  }

  // The state as a word and as the dot's colour (console.css: .live[data-state]).
  function status(box, key) {
    box.dataset.state = key;
    box.querySelector("#live-status").textContent = words.status[key] || "";
  }

  function streamToken(box) {
    return fetch(box.dataset.tokenUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": box.dataset.csrf, Accept: "application/json" }
    }).then(function (r) { if (!r.ok) throw new Error("stream token: " + r.status); return r.json(); });
  }

  function open(box) {
    streamToken(box).then(function (answer) {
      var url = answer.stream_url + "?token=" + encodeURIComponent(answer.token) +
        (lastId ? "&last_event_id=" + encodeURIComponent(lastId) : "");
      var source = new EventSource(url);
      source.onopen = function () {
        status(box, "live");
        // What happened between the page's render and now came before the stream: a page re-reads it.
        document.dispatchEvent(new CustomEvent("console:live-open"));
      };
      TYPES.forEach(function (type) {
        source.addEventListener(type, function (message) { lastId = message.lastEventId; show(box, message); });
      });
      // What was missed is past the stream's window: the page reloads to show the present.
      source.addEventListener("reset", function () { window.location.reload(); });
      source.onerror = function () {
        if (source.readyState !== EventSource.CLOSED) return; // EventSource reconnects by itself
        status(box, "reconnecting");
        setTimeout(function () { open(box); }, RETRY_MS);
      };
    }).catch(function () {
      status(box, "reconnecting");
      setTimeout(function () { open(box); }, RETRY_MS);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("live");
    if (!box || !window.EventSource) return;
    readWords(box);
    open(box);
  });
})();
