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

  // Live build logs: follow the log while the build runs, then reload for the final state.
  var log = document.querySelector("[data-log-url]");
  if (log) {
    var stick = true;
    log.addEventListener("scroll", function () {
      stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    });
    var state = document.querySelector("[data-build-state]");
    var source = new EventSource(log.dataset.logUrl);
    source.addEventListener("line", function (event) {
      log.appendChild(document.createTextNode(event.data + "\n"));
      if (stick) { log.scrollTop = log.scrollHeight; }
    });
    source.addEventListener("end", function (event) {
      source.close();
      if (state) {
        state.textContent = event.data.replace("_", " ");
        state.className = "badge badge-" + event.data;
      }
      log.dataset.finished = event.data;
    });
    source.onerror = function () {
      if (log.dataset.finished) { source.close(); }
    };
  }
})();
