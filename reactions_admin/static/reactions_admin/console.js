// The home page's rows and counts, refreshed in place every few seconds: a small fetch of
// the fragment the server renders (no full reload, no library, nothing from a CDN).
(function () {
  "use strict";
  var box = document.getElementById("console-live");
  if (!box) { return; }
  var every = Number(box.getAttribute("data-refresh-ms")) || 5000;
  var url = box.getAttribute("data-src");
  var refreshes = 0;
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        box.innerHTML = html;
        refreshes += 1;
        box.setAttribute("data-refreshes", String(refreshes));
      })
      .catch(function () { /* the next tick tries again */ });
  }
  setInterval(refresh, every);
})();
