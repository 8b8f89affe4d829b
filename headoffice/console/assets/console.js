// The console's script: draws the charts a page describes in data-chart
// (labels, series, axis titles) with Chart.js. The pages work without it;
// it adds the charts and, through htmx, searching as one types.
(function () {
  "use strict";
  function draw(canvas) {
    var spec = JSON.parse(canvas.dataset.chart);
    var locale = spec.lang === "tr" ? "tr-TR" : "en-GB";
    var fmt = new Intl.NumberFormat(locale);
    var datasets = spec.series.map(function (s, i) {
      return {
        type: s.kind, label: s.label, data: s.data, yAxisID: s.axis,
        backgroundColor: i === 0 ? "rgba(11, 92, 173, 0.55)" : "rgba(214, 110, 20, 0.9)",
        borderColor: i === 0 ? "rgb(11, 92, 173)" : "rgb(214, 110, 20)",
        borderWidth: s.kind === "line" ? 2 : 0, pointRadius: 2, tension: 0.2
      };
    });
    function axis(title, position, grid) {
      return {
        position: position, beginAtZero: true, title: { display: true, text: title },
        ticks: { callback: function (v) { return fmt.format(v); } }, grid: { drawOnChartArea: grid }
      };
    }
    new Chart(canvas, {
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, locale: locale,
        interaction: { mode: "index", intersect: false },
        plugins: { tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + fmt.format(c.parsed.y); } } } },
        scales: { x: { title: { display: true, text: spec.axes.x } }, y: axis(spec.axes.y, "left", true), y1: axis(spec.axes.y1, "right", false) }
      }
    });
    canvas.dataset.drawn = "true";
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (typeof Chart === "undefined") { return; }
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
}());
// Live lists: a table with data-live follows the server's event stream,
// which sends its rows as they are now.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table[data-live]").forEach(function (table) {
      if (typeof EventSource === "undefined") { return; }
      var src = new EventSource(table.dataset.live);
      src.addEventListener("rows", function (ev) {
        // Someone typing in a row (a reason to revoke) keeps the row: the
        // next update after they leave it brings the list up to date.
        var busy = table.contains(document.activeElement) ||
          Array.prototype.some.call(table.querySelectorAll("input:not([type=hidden])"), function (i) { return i.value !== ""; });
        if (busy) { return; }
        table.tBodies[0].innerHTML = ev.data;
        table.dataset.updated = String(Date.now());
      });
    });
  });
}());
