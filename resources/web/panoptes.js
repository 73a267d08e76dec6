// The status page's only script, served by the node. The pages work without it; with it,
// times show in the viewer's zone and <main> refreshes every few seconds without a reload.
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) { t.textContent = d.toLocaleString(); t.title = t.getAttribute("datetime"); }
    });
  }
  function refresh() {
    var main = document.querySelector("main");
    var every = main && parseInt(main.getAttribute("data-refresh") || "0", 10);
    if (!every) { return; }
    var note = document.getElementById("refresh");
    setInterval(function () {
      if (document.hidden || (document.activeElement && document.activeElement.tagName === "INPUT")) { return; }
      fetch(location.href, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
        .then(function (text) {
          var next = new DOMParser().parseFromString(text, "text/html").querySelector("main");
          if (next) { main.innerHTML = next.innerHTML; localTimes(main); }
          if (note) { note.textContent = "updated " + new Date().toLocaleTimeString(); }
        })
        .catch(function (e) { if (note) { note.textContent = "refresh failed: " + e.message; } });
    }, every * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); refresh(); });
})();
