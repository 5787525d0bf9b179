// Keeps the import progress bar fresh by polling the job's JSON status;
// opens the report when the import is done. Without JavaScript the page
// offers a plain "Refresh" link.
(function () {
  "use strict";
  var box = document.getElementById("linkage-job");
  var bar = document.getElementById("job-progress");
  if (!box || !bar || !window.fetch) { return; }
  var phase = document.getElementById("job-phase");
  var count = document.getElementById("job-count");
  var url = box.getAttribute("data-status-url");

  function show(s) {
    var label = box.getAttribute("data-phase-" + s.phase);
    if (label && phase) { phase.textContent = label; }
    if (s.total) {
      bar.max = s.total;
      bar.value = Math.min(s.done, s.total);
    } else {
      bar.removeAttribute("value");  // indeterminate while the size is unknown
    }
    if (count) {
      count.textContent = s.done + (s.total ? " / " + s.total : "") + " " + box.getAttribute("data-of");
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (s) {
        show(s);
        if (s.status === "done" || s.status === "failed") {
          window.location.assign(s.report_url);
        } else {
          window.setTimeout(poll, 700);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 300);
})();
