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

  // Image uploads: drop files on the form (or choose them) and each one uploads with its own
  // progress bar. Without this script the form posts all files at once.
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    var input = form.querySelector("input[type=file]");
    var list = form.querySelector(".uploads");
    var csrf = form.getAttribute("data-csrf");
    ["dragenter", "dragover"].forEach(function (t) {
      form.addEventListener(t, function (ev) { ev.preventDefault(); form.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      form.addEventListener(t, function () { form.classList.remove("over"); });
    });
    form.addEventListener("drop", function (ev) {
      ev.preventDefault();
      if (ev.dataTransfer && ev.dataTransfer.files.length) send(ev.dataTransfer.files);
    });
    form.addEventListener("submit", function (ev) {
      if (!input.files.length) return;
      ev.preventDefault();
      send(input.files);
    });
    function send(files) {
      var pending = files.length;
      var done = [];
      Array.prototype.forEach.call(files, function (file) {
        var li = document.createElement("li");
        var name = document.createElement("span");
        name.textContent = file.name + " ";
        var bar = document.createElement("progress");
        bar.max = 100;
        bar.value = 0;
        bar.setAttribute("aria-label", "Uploading " + file.name);
        var status = document.createElement("span");
        status.className = "status";
        li.appendChild(name);
        li.appendChild(bar);
        li.appendChild(status);
        list.appendChild(li);
        var body = new FormData();
        body.append("file", file, file.name);
        var xhr = new XMLHttpRequest();
        xhr.open("POST", "/v1/images");
        xhr.setRequestHeader("X-CSRF-Token", csrf);
        xhr.setRequestHeader("Accept", "application/json");
        // The page acts in the organisation chosen with the switcher; the API needs telling.
        if (form.dataset.org) xhr.setRequestHeader("X-Pixeld-Org", form.dataset.org);
        xhr.upload.addEventListener("progress", function (e) {
          if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
        });
        xhr.addEventListener("loadend", function () {
          var json = null;
          try { json = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
          if (xhr.status === 201 && json) {
            bar.value = 100;
            var a = document.createElement("a");
            a.href = "/images/" + json.id;
            a.textContent = "uploaded";
            status.appendChild(a);
            done.push(json.id);
          } else {
            li.className = "failed";
            status.textContent = (json && (json.detail || json.title)) || "upload failed";
          }
          pending -= 1;
          if (pending === 0) {
            if (done.length === 1 && files.length === 1) location.href = "/images/" + done[0];
            else if (done.length > 0) setTimeout(function () { location.reload(); }, 800);
          }
        });
        xhr.send(body);
      });
    }
  });

  // Before/after: the range input uncovers the optimized image over the original.
  document.querySelectorAll("[data-compare]").forEach(function (box) {
    var after = box.querySelector(".after");
    var range = box.querySelector("[data-compare-range]");
    var apply = function () { after.style.clipPath = "inset(0 0 0 " + range.value + "%)"; };
    range.addEventListener("input", apply);
    apply();
  });

  // The landing page's demo: re-render the card as the visitor types (debounced; the server
  // caches each text). Without JavaScript the form submits and the page comes back rendered.
  document.querySelectorAll("form[data-demo]").forEach(function (form) {
    var img = document.getElementById("demo-img");
    var timer;
    var update = function () {
      var q = new URLSearchParams();
      q.set("title", form.elements.title.value.trim() || "Render images from templates, fast");
      q.set("subtitle", form.elements.subtitle.value.trim() || "pixeld.example");
      var next = "/demo.webp?" + q.toString();
      if (img.getAttribute("src") !== next) {
        img.setAttribute("aria-busy", "true");
        img.src = next;
      }
    };
    img.addEventListener("load", function () { img.removeAttribute("aria-busy"); });
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 400);
    });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); update(); });
  });

  // Template editor: the properties panel rewrites the layer in the JSON as you type, and the
  // preview follows (htmx posts the draft after a pause). Typing in the JSON refreshes the
  // panel. The panel itself is swapped in by htmx when a layer is chosen.
  var source = document.querySelector("#editor textarea[name=body]");
  if (source) {
    var findLayer = function (layers, name) {
      if (!Array.isArray(layers)) return null;
      for (var i = 0; i < layers.length; i++) {
        if (layers[i] && layers[i].name === name) return layers[i];
        var inner = findLayer(layers[i] && layers[i].children, name);
        if (inner) return inner;
      }
      return null;
    };
    var panelError = function (panel, text) {
      var box = panel.querySelector(".props-js-error");
      if (!box) {
        box = document.createElement("p");
        box.className = "error props-js-error";
        box.setAttribute("role", "alert");
        panel.appendChild(box);
      }
      box.textContent = text;
      box.hidden = !text;
    };
    document.addEventListener("input", function (ev) {
      var input = ev.target;
      var panel = input.closest && input.closest("[data-props]");
      if (!panel || !input.dataset.key) return;
      var doc;
      try { doc = JSON.parse(source.value); } catch (e) {
        panelError(panel, "Fix the template JSON first: " + e.message);
        return;
      }
      var layer = findLayer(doc.layers, panel.dataset.layer);
      if (!layer) { panelError(panel, "That layer is no longer in the JSON."); return; }
      var key = input.dataset.key;
      if (input.dataset.kind === "bool") layer[key] = input.checked;
      else if (input.value.trim() === "") delete layer[key];
      else if (input.dataset.kind === "number") {
        var n = Number(input.value);
        if (!isFinite(n)) { panelError(panel, key + " must be a number."); return; }
        layer[key] = n;
      } else layer[key] = input.value;
      panelError(panel, "");
      source.value = JSON.stringify(doc, null, 2);
      source.dispatchEvent(new Event("input", { bubbles: true }));
    });
    source.addEventListener("input", function (ev) {
      if (!ev.isTrusted) return;
      var panel = document.querySelector("[data-props][data-layer]");
      if (!panel) return;
      var doc;
      try { doc = JSON.parse(source.value); } catch (e) { return; }
      var layer = findLayer(doc.layers, panel.dataset.layer);
      if (!layer) return;
      panel.querySelectorAll("[data-key]").forEach(function (i) {
        var v = layer[i.dataset.key];
        if (i.dataset.kind === "bool") i.checked = v === true;
        else i.value = v === undefined || v === null ? "" : String(v);
      });
    });
  }

  // "Deleted in 3 h 12 min", kept current.
  var countdowns = document.querySelectorAll("time[data-countdown]");
  var tick = function () {
    countdowns.forEach(function (t) {
      var left = Math.max(0, Math.floor((Date.parse(t.getAttribute("datetime")) - Date.now()) / 60000));
      t.textContent = left === 0 ? "any minute now" : left < 60 ? "in " + left + " min" : "in " + Math.floor(left / 60) + " h " + (left % 60) + " min";
    });
  };
  if (countdowns.length) setInterval(tick, 30000);

  // Cookieless page-view count: <body data-count="website|dashboard">. The server hashes a
  // daily salt with the request; nothing is stored in the browser. Skipped when the browser asks not to be tracked.
  var dnt = navigator.doNotTrack === "1" || navigator.globalPrivacyControl === true;
  if (!dnt && document.body && document.body.hasAttribute("data-count")) {
    var body = JSON.stringify({
      site: document.body.getAttribute("data-count"),
      kind: "pageview",
      // Pages are counted by route, not by which image or template was open.
      name: location.pathname.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "{id}"),
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
