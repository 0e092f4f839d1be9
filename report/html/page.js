// qinsaudit page script: zoom, tooltips, keyboard and findings for the
// treemap drawn by the Go renderer. The page reads without it.
(function () {
  "use strict";
  var svg = document.getElementById("tm");
  if (!svg) return;
  var NS = "http://www.w3.org/2000/svg";
  var VB = svg.viewBox.baseVal, W = VB.width, H = VB.height;
  var tip = document.getElementById("tip");
  var crumb = document.getElementById("crumb");
  var outBtn = document.getElementById("zoom-out");
  var data = {};
  function json(id) {
    if (!(id in data)) {
      var el = document.getElementById(id);
      data[id] = el ? JSON.parse(el.textContent) : null;
    }
    return data[id];
  }
  var zoomed = null, hidden = [], added = [], cur = null;

  function dom() {
    var r = document.querySelector('input[name="domain"]:checked');
    return svg.querySelector('g.dom[data-domain~="' + (r ? r.value : "") + '"]');
  }
  function box(el) {
    if (el.dataset.b) return el.dataset.b.split(" ").map(Number);
    return ["x", "y", "width", "height"].map(function (a) { return +el.getAttribute(a); });
  }

  // Figures of a part of a merged rectangle, from the embedded JSON.
  var units = [["TiB", 1099511627776], ["GiB", 1073741824], ["MiB", 1048576], ["KiB", 1024]];
  function iec(v) {
    var a = Math.abs(v);
    for (var i = 0; i < units.length; i++) if (a >= units[i][1]) return (v / units[i][1]).toFixed(2) + " " + units[i][0];
    return v + " B";
  }
  function exact(v) { return String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ",") + " B"; }
  function both(v) { return iec(v) + " (" + exact(v) + ")"; }
  function partTitle(i) {
    var lv = json("levels-json");
    if (lv) {
      var r = lv.tensor.rows[i];
      return r.key + "\nold: " + both(r.old_bytes) + "\nnew: " + both(r.new_bytes) + "\nchange: " + both(r.delta_bytes);
    }
    var t = json("report-json").tensors[i];
    return t.name + "\n" + t.dtype + " [" + t.shape.join(",") + "] · " + (t.scheme || "no scheme") + " · " + t.role + "/" + t.part +
      "\nbaseline: " + both(t.baseline_bytes) + "\ntheoretical: " + both(t.theoretical_bytes) + "\nstored: " + both(t.stored_bytes) +
      "\nparams: " + exact(t.params).slice(0, -2) + " · bits/weight: " + (t.params ? (t.stored_bytes * 8 / t.params).toFixed(2) : "-");
  }
  function titleOf(el) {
    if (el._ti != null) return partTitle(el._ti);
    if (el._title != null) return el._title;
    var t = el.querySelector("title");
    return t ? t.textContent : "";
  }
  function textOn(fill) {
    var c = [1, 3, 5].map(function (i) {
      var v = parseInt(fill.substr(i, 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000" : "#fff";
  }

  function showTip(el, x, y) {
    tip.textContent = titleOf(el);
    tip.hidden = false;
    var wrap = tip.parentNode.getBoundingClientRect();
    var left = Math.min(x - wrap.left + 14, wrap.width - tip.offsetWidth - 4);
    tip.style.left = Math.max(0, left) + "px";
    tip.style.top = (y - wrap.top + 16) + "px";
  }
  function hideTip() { tip.hidden = true; }

  function restore() {
    hidden.forEach(function (el) { el.style.display = ""; });
    added.forEach(function (el) { el.remove(); });
    hidden = []; added = [];
    svg.querySelectorAll(".dom").forEach(function (g) { g.removeAttribute("transform"); });
    svg.classList.remove("zoomed");
  }

  // zoom shows el (a group or a merged rectangle) filling the map.
  function zoom(el) {
    restore();
    setCur(null);
    zoomed = el;
    outBtn.disabled = !el;
    if (!el) { crumb.textContent = "whole model"; return; }
    var d = el.closest(".dom"), b = box(el);
    var s = Math.min(W / b[2], H / b[3]);
    var tx = (W - b[2] * s) / 2 - b[0] * s, ty = (H - b[3] * s) / 2 - b[1] * s;
    d.setAttribute("transform", "translate(" + tx + "," + ty + ") scale(" + s + ")");
    svg.classList.add("zoomed");
    // Mask what lies around el: changing no other element keeps a zoom
    // fast on a map of tens of thousands of rectangles.
    var zx = tx + b[0] * s, zy = ty + b[1] * s, zw = b[2] * s, zh = b[3] * s;
    var mask = document.createElementNS(NS, "path");
    mask.setAttribute("class", "zmask");
    mask.setAttribute("fill-rule", "evenodd");
    mask.setAttribute("d", "M0 0H" + W + "V" + H + "H0Z M" + zx + " " + zy + "h" + zw + "v" + zh + "h" + (-zw) + "Z");
    svg.appendChild(mask); added.push(mask);
    // Draw the members of merged rectangles that now have room for them.
    var merged = el.matches("rect.m") ? [el] : Array.prototype.slice.call(el.querySelectorAll("rect.m"));
    merged.forEach(function (m) {
      var parts = m.dataset.p.split(";"), mb = box(m);
      if (m !== el && mb[2] * mb[3] * s * s / parts.length < 12) return;
      m.style.display = "none"; hidden.push(m);
      var frag = document.createDocumentFragment();
      parts.forEach(function (p) {
        var f = p.split(" "), r = document.createElementNS(NS, "rect");
        r.setAttribute("class", "t p");
        r.setAttribute("x", f[1]); r.setAttribute("y", f[2]); r.setAttribute("width", f[3]); r.setAttribute("height", f[4]);
        r.setAttribute("fill", f[5]);
        r._ti = +f[0];
        frag.appendChild(r);
        added.push(r);
      });
      m.parentNode.insertBefore(frag, m);
    });
    // Labels where the zoomed rectangles have room.
    var g = document.createElementNS(NS, "g");
    g.setAttribute("class", "zl");
    var nl = 0;
    leaves().forEach(function (r) {
      var rb = box(r), w = rb[2] * s, h = rb[3] * s;
      if (w < 46 || h < 15 || ++nl > 2000) return;
      var t = document.createElementNS(NS, "text"), name = titleOf(r).split("\n")[0];
      var n = Math.floor((w - 6) / 6.2);
      t.textContent = name.length > n ? name.slice(0, n - 1) + "…" : name;
      t.setAttribute("class", "lb");
      t.setAttribute("x", rb[0] * s + tx + 3); t.setAttribute("y", rb[1] * s + ty + 12);
      t.setAttribute("fill", textOn(r.getAttribute("fill")));
      g.appendChild(t);
    });
    svg.appendChild(g); added.push(g);
    var names = [];
    for (var n = el; n !== d; n = n.parentNode) names.unshift(n.dataset.l ? n.dataset.k + " " + n.dataset.l : titleOf(n).split("\n")[0]);
    crumb.textContent = names.join(" › ");
  }

  // The visible tensor rectangles of the zoomed node, in document order.
  function leaves() {
    var root = zoomed || dom();
    if (!root) return [];
    if (root.matches("rect")) return added.filter(function (r) { return r.tagName === "rect" && r.classList.contains("p"); });
    var all = root.querySelectorAll("rect.t");
    return Array.prototype.filter.call(all, function (r) { return r.style.display !== "none"; });
  }

  // zoomInto is a click on r: zoom one level deeper along r's path.
  function zoomInto(r) {
    if (zoomed && zoomed.matches("rect")) return; // the deepest level
    var d = r.closest(".dom"), top = zoomed || d, path = [];
    for (var n = r.parentNode; n && n !== top; n = n.parentNode) path.unshift(n);
    if (path.length) zoom(path[0]);
    else if (r.matches("rect.m")) zoom(r);
  }
  function zoomOut() {
    if (!zoomed) return;
    var p = zoomed.parentNode;
    zoom(p.classList.contains("dom") ? null : p);
  }

  function setCur(r) {
    if (cur) cur.classList.remove("cur");
    cur = r;
    if (!r) { hideTip(); return; }
    r.classList.add("cur");
    var b = r.getBoundingClientRect();
    showTip(r, b.left + b.width / 2, b.top + Math.min(b.height, 30));
  }

  svg.addEventListener("mouseover", function (e) {
    var r = e.target.closest("rect.t");
    if (!r) return;
    var t = r.querySelector("title");
    if (t) { r._title = t.textContent; t.remove(); r._t = t; }
    showTip(r, e.clientX, e.clientY);
  });
  svg.addEventListener("mousemove", function (e) {
    var r = e.target.closest("rect.t");
    if (r && !tip.hidden) showTip(r, e.clientX, e.clientY);
  });
  svg.addEventListener("mouseout", function (e) {
    var r = e.target.closest("rect.t");
    if (r && r._t) { r.appendChild(r._t); r._t = null; r._title = null; }
    if (r !== cur) hideTip();
  });
  svg.addEventListener("click", function (e) {
    var r = e.target.closest("rect.t");
    if (r) zoomInto(r);
  });
  svg.addEventListener("keydown", function (e) {
    var ls = leaves(), i = ls.indexOf(cur);
    switch (e.key) {
      case "ArrowRight": case "ArrowDown": setCur(ls[Math.min(i + 1, ls.length - 1)] || null); break;
      case "ArrowLeft": case "ArrowUp": setCur(ls[Math.max(i - 1, 0)] || null); break;
      case "Home": setCur(ls[0] || null); break;
      case "End": setCur(ls[ls.length - 1] || null); break;
      case "Enter": case " ": if (cur) { var c = cur; zoomInto(c); setCur(leaves()[0] || null); } break;
      case "Escape": zoomOut(); setCur(leaves()[0] || null); break;
      default: return;
    }
    e.preventDefault();
  });
  svg.addEventListener("focus", function () { if (!cur) setCur(leaves()[0] || null); });
  svg.addEventListener("blur", function () { setCur(null); });
  outBtn.addEventListener("click", zoomOut);
  document.addEventListener("keydown", function (e) { if (e.key === "Escape" && e.target === document.body) zoomOut(); });

  // Switching the size domain keeps the zoom on the same node.
  document.querySelectorAll('input[name="domain"]').forEach(function (inp) {
    inp.addEventListener("change", function () {
      var id = zoomed && zoomed.dataset.id, d = dom();
      var same = id && id !== "-1" ? d.querySelector('[data-id="' + id + '"]') : null;
      zoom(same);
    });
  });

  // Findings: select a module on the map.
  document.querySelectorAll("button.sel").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var m = b.dataset.m, first = null;
      zoom(null);
      svg.querySelectorAll(".hl").forEach(function (el) { el.classList.remove("hl"); });
      document.querySelectorAll("tr.hl").forEach(function (el) { el.classList.remove("hl"); });
      b.closest("tr").classList.add("hl");
      dom().querySelectorAll("g.module").forEach(function (g) {
        if (g.dataset.m === m) { g.classList.add("hl"); first = first || g; }
      });
      crumb.textContent = first ? "module " + (m || "(top level)") + " highlighted" : "module " + m + " is too small to draw at this size";
      svg.scrollIntoView({ block: "nearest" });
    });
  });
  window.qinsaudit = { zoom: zoom, zoomOut: zoomOut, leaves: leaves, zoomInto: zoomInto };
})();
