// moorage console: small progressive enhancements; every page works without them.
"use strict";

(function () {
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP registries on other hosts are no secure context: fall back to a selection.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      var done = document.execCommand("copy");
      document.body.removeChild(area);
      if (done) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function flash(button, text) {
    if (!button.dataset.label) { button.dataset.label = button.textContent; }
    button.textContent = text;
    button.classList.add("copied");
    window.clearTimeout(button._timer);
    button._timer = window.setTimeout(function () {
      button.textContent = button.dataset.label;
      button.classList.remove("copied");
    }, 1600);
  }

  document.addEventListener("click", function (event) {
    var copy = event.target.closest("button[data-copy]");
    if (copy) {
      copyText(copy.dataset.copy).then(
        function () { flash(copy, "Copied"); },
        function () { flash(copy, "Press Ctrl+C"); }
      );
      return;
    }
    var confirming = event.target.closest("[data-confirm]");
    if (confirming && !window.confirm(confirming.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // A destructive button stays disabled until its field repeats the expected name.
  document.querySelectorAll("[data-confirm-target]").forEach(function (button) {
    var input = document.getElementById(button.dataset.confirmTarget);
    if (!input) { return; }
    var update = function () {
      button.disabled = input.value.trim() !== input.dataset.confirmName;
    };
    input.addEventListener("input", update);
    update();
  });

  // A rule's webhook secret is never in the page: it is fetched and copied on request.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-secret]");
    if (!button) { return; }
    fetch(button.dataset.copySecret, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (rule) { return copyText(rule.webhook_secret); })
      .then(
        function () { flash(button, "Copied"); },
        function () { flash(button, "Could not copy"); }
      );
  });

  // Live build logs: follow the log while the build runs, then reload for the final state.
  var log = document.querySelector("[data-log-url]");
  if (log) {
    var stick = true;
    var lastId = log.dataset.after;
    log.addEventListener("scroll", function () {
      stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    });
    var finish = function (state) {
      log.dataset.finished = state;
      var badge = document.querySelector("[data-build-state]");
      if (badge) {
        badge.textContent = state.replace("_", " ");
        badge.className = "badge badge-" + state;
      }
      var live = document.querySelector("[data-live]");
      if (live) { live.remove(); }
      // The duration, commit and digest are known now: show them.
      window.setTimeout(function () { window.location.reload(); }, 800);
    };
    var follow = function () {
      var source = new EventSource(log.dataset.logUrl + "&after=" + encodeURIComponent(lastId));
      source.onmessage = function (event) {
        var entry = JSON.parse(event.data);
        lastId = event.lastEventId || lastId;
        log.appendChild(document.createTextNode(entry.line + "\n"));
        if (stick) { log.scrollTop = log.scrollHeight; }
      };
      source.addEventListener("end", function (event) {
        source.close();
        finish(JSON.parse(event.data).state);
      });
      // Reconnect from the last line seen, not from where the page started.
      source.onerror = function () {
        source.close();
        if (!log.dataset.finished) { window.setTimeout(follow, 1500); }
      };
    };
    follow();
  }
})();
