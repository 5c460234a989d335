// stbench report site: sortable / filterable leaderboards and plotly figures. No network access: every
// figure's data sits in the page (<script type="application/json">), plotly.min.js in assets/.
(function () {
  "use strict";

  function value(td) {
    var v = td.getAttribute("data-v");
    if (v === null || v === "") return null;
    var x = Number(v);
    return isNaN(x) ? v.toLowerCase() : x;
  }

  // click a header: sort by it (numbers as numbers, missing values always last); click again: reverse
  function sortable(table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.setAttribute("tabindex", "0");
      th.setAttribute("title", "sort by " + th.textContent.trim());
      function go() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); h.querySelector(".arrow").textContent = "↕"; });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        th.querySelector(".arrow").textContent = asc ? "▲" : "▼";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = value(a.cells[col]), y = value(b.cells[col]);
          if (x === null && y === null) return Number(a.dataset.order) - Number(b.dataset.order);
          if (x === null) return 1;
          if (y === null) return -1;
          var c = x < y ? -1 : x > y ? 1 : 0;
          if (c === 0) return Number(a.dataset.order) - Number(b.dataset.order);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    });
  }

  // the filter bar above a table: text on model names, family, kind, budget; plots of the page follow the family
  function filterable(form) {
    var table = document.getElementById(form.getAttribute("data-for"));
    var count = form.querySelector(".count");
    function apply() {
      var q = (form.elements.q.value || "").trim().toLowerCase();
      var fam = form.elements.family ? form.elements.family.value : "";
      var kind = form.elements.kind ? form.elements.kind.value : "";
      var budget = form.elements.budget ? form.elements.budget.value : "";
      var shown = 0, rows = table.tBodies[0].rows;
      for (var i = 0; i < rows.length; i++) {
        var r = rows[i];
        var ok = (!q || r.dataset.model.toLowerCase().indexOf(q) >= 0) && (!fam || r.dataset.family === fam) &&
          (!kind || r.dataset.kind === kind) && (!budget || r.dataset.kind === "floor" || (r.dataset.budget || "").split("|").indexOf(budget) >= 0);
        r.hidden = !ok;
        shown += ok ? 1 : 0;
      }
      if (count) count.textContent = shown + " of " + rows.length + " rows shown";
      if (window.Plotly) {
        document.querySelectorAll("figure.drawn .plot").forEach(function (div) {
          var vis = (div.data || []).map(function (t) {
            return !fam || t.legendgroup === fam || t.legendgroup === "floor" ? true : "legendonly";
          });
          if (vis.length) window.Plotly.restyle(div, { visible: vis });
        });
      }
    }
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    apply();
  }

  // every <div class="plot" data-spec="ID">: draw the spec held in <script id="ID">; the PNG stays if it cannot
  function plots() {
    document.querySelectorAll("div.plot[data-spec]").forEach(function (div) {
      if (!window.Plotly) return;
      var spec = JSON.parse(document.getElementById(div.getAttribute("data-spec")).textContent);
      var cfg = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"] };
      window.Plotly.newPlot(div, spec.data, spec.layout, cfg).then(function () {
        div.closest("figure").classList.add("drawn");
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.lb").forEach(sortable);
    plots();
    document.querySelectorAll("form.filters").forEach(filterable);
  });
})();
