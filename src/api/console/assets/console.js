// ImTicket console: refreshes each page's live part (#live[data-live]) in place every
// data-live milliseconds, and the seat picture (img[data-refresh]). Same origin only, no
// inline script (the Content-Security-Policy allows none). Without JavaScript every page still
// works: reload it.
"use strict";
(function () {
  function refreshLive(box) {
    var every = parseInt(box.getAttribute("data-live"), 10) || 2000;
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(window.location.pathname + window.location.search, {
        headers: { "X-Console-Live": "1" },
        credentials: "same-origin",
        cache: "no-store",
        redirect: "error"
      }).then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      }).then(function (html) {
        box.innerHTML = html;
        box.setAttribute("data-refreshed", String(Date.now()));
        document.body.classList.remove("stale");
      }).catch(function () {
        document.body.classList.add("stale");
      }).then(function () { busy = false; });
    }, every);
  }
  function refreshPicture(img) {
    var every = parseInt(img.getAttribute("data-refresh"), 10) || 5000;
    var base = img.getAttribute("src").split("?")[0];
    var n = 0;
    setInterval(function () {
      if (!document.hidden) { n += 1; img.setAttribute("src", base + "?v=" + n); }
    }, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(refreshLive);
    document.querySelectorAll("img[data-refresh]").forEach(refreshPicture);
  });
})();
