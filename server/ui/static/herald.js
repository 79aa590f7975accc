// herald's UI works without this script. It only refreshes pages that ask
// for it (a delivery still on its way), and asks before a form that says
// it needs confirming.
(function () {
  "use strict";
  var live = document.querySelector("[data-refresh]");
  if (live) {
    var seconds = parseInt(live.getAttribute("data-refresh"), 10) || 2;
    setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
})();
