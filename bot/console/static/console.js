// gradbot console: keyboard shortcuts on the review page, live progress on a broadcast page.
(function () {
  "use strict";
  function typing(e) { var t = e.target; return t && /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName); }

  var review = document.getElementById("review-form");
  if (review) {
    var reasons = review.querySelectorAll("input[name=reason]");
    document.addEventListener("keydown", function (e) {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) { return; }
      var key = e.key.toLowerCase();
      if (key === "a") { e.preventDefault(); review.querySelector("button[value=approve]").click(); }
      else if (key === "r") { e.preventDefault(); review.querySelector("button[value=reject]").click(); }
      else if (/^[1-9]$/.test(key) && reasons[+key - 1]) { e.preventDefault(); reasons[+key - 1].click(); }
      else if (key === "n") { e.preventDefault(); var next = review.querySelector("input[name=then]");
        if (next) { next.checked = !next.checked; } }
      else if (key === "escape") { e.preventDefault(); review.querySelector("button[value=release]").click(); }
    });
  }

  var live = document.getElementById("live-progress");
  if (live) {
    var url = live.getAttribute("data-url");
    var tick = function () {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (p) {
          ["total", "sent", "failed", "pending"].forEach(function (k) {
            var el = document.getElementById("p-" + k); if (el) { el.textContent = p[k]; }
          });
          var bar = document.getElementById("p-bar");
          if (bar) { bar.max = Math.max(1, p.total); bar.value = p.sent + p.failed; }
          var state = document.getElementById("p-state");
          if (state) { state.textContent = live.getAttribute("data-" + p.state) || p.state; state.className = "pill " + p.state; }
          if (p.state === "done" || p.state === "cancelled") {
            // The page was drawn before the end: draw it again for the final report and controls.
            if (live.getAttribute("data-initial") !== p.state) { window.location.reload(); }
            return;
          }
          setTimeout(tick, 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    };
    tick();
  }
})();
