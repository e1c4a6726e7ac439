// ringtrail console. No inline script anywhere: this file is all of it.
// Text from rows is only ever set with textContent, never as markup.
"use strict";

(function () {
  // UTC on the page, the local time on hover.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.title = d.toLocaleString() + " (local)";
    });
  }

  // Keyboard: / search, j k rows, Enter open, g o|l|g|u pages, ? help.
  var selected = -1;
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table.rows tbody tr"));
  }
  function select(i) {
    var all = rows();
    if (!all.length) return;
    i = Math.max(0, Math.min(all.length - 1, i));
    all.forEach(function (r) { r.classList.remove("selected"); });
    all[i].classList.add("selected");
    all[i].scrollIntoView({ block: "nearest" });
    selected = i;
  }
  var pendingG = false;
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (pendingG) {
      pendingG = false;
      var to = { o: "/", l: "/logs", g: "/gaps", u: "/usage" }[e.key];
      if (to) { window.location.href = to; e.preventDefault(); }
      return;
    }
    switch (e.key) {
      case "/": {
        var input = document.querySelector("form.filters input");
        if (input) { input.focus(); e.preventDefault(); }
        break;
      }
      case "j": select(selected + 1); break;
      case "k": select(selected - 1); break;
      case "Enter": {
        var row = rows()[selected];
        var link = row && row.querySelector("a[href]");
        if (link) window.location.href = link.getAttribute("href");
        else if (row) { var d = row.querySelector("details"); if (d) d.open = !d.open; }
        break;
      }
      case "g": pendingG = true; break;
      case "?": {
        var help = document.getElementById("help");
        if (help) help.hidden = !help.hidden;
        break;
      }
      default: return;
    }
  });

  // The logs page's live mode: /api/tail, exactly once, newest on top.
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function rowElement(r) {
    var tr = document.createElement("tr");
    tr.dataset.id = r.id;
    var ts = document.createElement("td");
    ts.className = "ts";
    var t = document.createElement("time");
    t.setAttribute("datetime", r.ts);
    t.textContent = r.ts;
    ts.appendChild(t);
    tr.appendChild(ts);
    cell(tr, r.level_name || String(r.level), "lvl lvl-" + (r.level_name || ""));
    cell(tr, r.target, "mono");
    var msg = cell(tr, r.message, "msg");
    if (r.point) {
      var p = document.createElement("span");
      p.className = "point point-" + r.point;
      p.textContent = r.point;
      msg.insertBefore(p, msg.firstChild);
      msg.insertBefore(document.createTextNode(" "), p.nextSibling);
    }
    var trace = document.createElement("td");
    trace.className = "mono";
    if (r.trace_id) {
      var a = document.createElement("a");
      a.href = "/traces/" + encodeURIComponent(r.trace_id);
      a.textContent = r.trace_id;
      trace.appendChild(a);
    }
    tr.appendChild(trace);
    var f = document.createElement("td");
    var details = document.createElement("details");
    var summary = document.createElement("summary");
    summary.textContent = Object.keys(r.fields || {}).length + " fields";
    var pre = document.createElement("pre");
    pre.textContent = JSON.stringify(r.fields, null, 2);
    details.appendChild(summary);
    details.appendChild(pre);
    f.appendChild(details);
    tr.appendChild(f);
    localTimes(tr);
    return tr;
  }
  var source = null;
  function setLive(on) {
    var button = document.getElementById("live");
    var body = document.querySelector("table.rows tbody");
    if (!button || !body) return;
    var url = new URL(window.location.href);
    if (source) { source.close(); source = null; }
    if (on) {
      var params = new URLSearchParams(url.search);
      params.delete("before");
      params.delete("live");
      params.delete("limit");
      params.set("last", "50");
      body.textContent = "";
      source = new EventSource("/api/tail?" + params.toString());
      source.addEventListener("rows", function (ev) {
        var list = JSON.parse(ev.data);
        for (var i = 0; i < list.length; i++) {
          body.insertBefore(rowElement(list[i]), body.firstChild);
        }
        while (body.children.length > 2000) body.removeChild(body.lastChild);
        var count = document.getElementById("live-count");
        if (count) count.textContent = String(body.children.length);
      });
      url.searchParams.set("live", "1");
      button.textContent = "Stop live";
      button.classList.add("live-on");
      var pager = document.querySelector(".pager");
      if (pager) pager.hidden = true;
    } else {
      url.searchParams.delete("live");
      button.textContent = "Live";
      button.classList.remove("live-on");
    }
    history.replaceState(null, "", url.toString());
    document.body.dataset.live = on ? "1" : "0";
  }

  // The overview's "run verify": a same-origin POST, then poll its state.
  function verify(button) {
    button.disabled = true;
    button.textContent = "Verifying…";
    fetch("/api/verify", { method: "POST", credentials: "same-origin" }).then(function poll() {
      return fetch("/api/verify", { credentials: "same-origin" }).then(function (r) { return r.json(); })
        .then(function (v) {
          if (v.state === "running") return new Promise(function (ok) { setTimeout(ok, 500); }).then(poll);
          window.location.reload();
        });
    }).catch(function () { button.disabled = false; button.textContent = "Run verify"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var live = document.getElementById("live");
    if (live) {
      live.addEventListener("click", function () { setLive(!source); });
      if (new URL(window.location.href).searchParams.get("live") === "1") setLive(true);
    }
    var v = document.getElementById("verify");
    if (v) v.addEventListener("click", function () { verify(v); });
    document.querySelectorAll("form.filters").forEach(function (form) {
      // Empty fields stay out of the URL, so it reads like the CLI line.
      form.addEventListener("submit", function () {
        form.querySelectorAll("input, select").forEach(function (i) {
          if (!i.value) i.disabled = true;
        });
      });
    });
  });
})();
