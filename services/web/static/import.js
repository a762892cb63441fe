// The import page while its job runs: polls the job's state.json once a second, moves the
// progress bar, and reloads the page once the job has stopped (the preview or the result is
// then complete). A failed poll is tried again; the page never gives up by itself.
(function () {
  "use strict";
  var box = document.getElementById("import-status");
  if (!box) { return; }
  var url = box.getAttribute("data-state-url");
  var bar = document.getElementById("import-progress");
  var text = box.querySelector(".progress-text");
  var word = box.querySelector(".state-word");
  var running = { checking: true, applying: true };

  function show(job) {
    if (!running[job.state]) {
      window.location.reload();
      return false;
    }
    if (bar) {
      bar.max = job.total || 1;
      bar.value = job.processed;
      bar.textContent = job.percent + "%";
    }
    if (text) {
      text.textContent = job.processed + " of " + job.total +
        (job.state === "checking" ? " photos checked" : " rows applied");
    }
    if (word) { word.textContent = job.state_word; }
    return true;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (job) { if (show(job)) { window.setTimeout(poll, 1000); } })
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  window.setTimeout(poll, 500);
}());
