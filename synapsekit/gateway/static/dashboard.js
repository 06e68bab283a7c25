// synapsekit gateway dashboard: draws the spend charts from the page's JSON block.
// Loaded from the package (no CDN); no inline script, so the page's CSP stays strict.
(function () {
  "use strict";
  var PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                 "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);

  function draw(id, seriesByName) {
    var el = document.getElementById(id);
    var names = Object.keys(seriesByName).sort();
    var columns = [data.days];
    var series = [{}];
    names.forEach(function (name, i) {
      columns.push(seriesByName[name]);
      series.push({
        label: name,
        stroke: PALETTE[i % PALETTE.length],
        fill: PALETTE[i % PALETTE.length] + "33",
        width: 2,
        points: { show: true, size: 8, fill: PALETTE[i % PALETTE.length] },
        value: function (u, v) { return v == null ? "-" : "$" + v.toFixed(6); }
      });
    });
    var opts = {
      width: Math.max(320, el.clientWidth || 560),
      height: 240,
      series: series,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      axes: [{}, { values: function (u, vals) { return vals.map(function (v) { return "$" + v.toPrecision(3); }); }, size: 86 }]
    };
    return new uPlot(opts, columns, el);
  }

  draw("chart-key", data.charts.key);
  draw("chart-model", data.charts.model);
  document.body.setAttribute("data-charts", "drawn");
})();
