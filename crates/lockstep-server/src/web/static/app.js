// Lockstep's case page: live updates. The page works without this script; with it, the
// parts of the page marked data-live are swapped for fresh ones whenever the server says
// the case changed (server-sent events carry only the case's version, never its content).
(function () {
  "use strict";
  var main = document.getElementById("case");
  if (!main || !window.EventSource || !window.fetch) {
    return;
  }
  var busy = false;
  var again = false;
  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        return r.ok ? r.text() : null;
      })
      .then(function (text) {
        if (text === null) {
          return;
        }
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("case");
        if (!fresh) {
          return;
        }
        fresh.querySelectorAll("[data-live]").forEach(function (el) {
          var old = document.getElementById(el.id);
          if (old) {
            old.replaceWith(document.importNode(el, true));
          }
        });
        main.dataset.version = fresh.dataset.version;
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }
  var source = new EventSource("/cases/" + encodeURIComponent(main.dataset.case) + "/events");
  source.addEventListener("changed", function (e) {
    if (e.data !== main.dataset.version) {
      refresh();
    }
  });
  source.addEventListener("version", function (e) {
    // Connected (or reconnected): catch up on anything missed meanwhile.
    if (e.data !== main.dataset.version) {
      refresh();
    }
  });
})();
