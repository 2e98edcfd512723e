// pixeld's own script: small conveniences on top of pages that work without it.
"use strict";
(function () {
  // Copy buttons: <button data-copy="element-id">.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var el = document.getElementById(btn.getAttribute("data-copy"));
    if (!el) return;
    var text = el.value !== undefined && el.tagName !== "CODE" ? el.value : el.textContent;
    var done = function () {
      var label = btn.textContent;
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var range = document.createRange();
      range.selectNodeContents(el);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { /* selected for manual copy */ }
    }
  });

  // Forms that destroy something ask first: <form data-confirm="Revoke this token?">.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });

  // Cookieless page-view count: <body data-count="website|dashboard">. The server hashes a
  // daily salt with the request; nothing is stored in the browser. Skipped when the browser asks not to be tracked.
  var dnt = navigator.doNotTrack === "1" || navigator.globalPrivacyControl === true;
  if (!dnt && document.body && document.body.hasAttribute("data-count")) {
    var body = JSON.stringify({
      site: document.body.getAttribute("data-count"),
      kind: "pageview",
      name: location.pathname,
      referrer: document.referrer || null
    });
    try {
      fetch("/v1/analytics/events", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: body,
        keepalive: true,
        // The session cookie, if any, is only read to honour the user's objection.
        credentials: "same-origin"
      }).catch(function () {});
    } catch (e) { /* counting is never worth an error */ }
  }
})();
