// The insights page: draws its charts from the figures the page carries; no inline code.
"use strict";

(function () {
  const colours = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#c62828", "#37474f"];
  const data = JSON.parse(document.getElementById("chart-data").textContent);

  function draw(id, xs, series) {
    const figure = document.getElementById(id);
    const names = Object.keys(series);
    new uPlot({
      width: Math.max(280, figure.clientWidth - 16),
      height: 220,
      scales: { x: { time: true } },
      axes: [{}, { size: 72 }],
      series: [{}].concat(names.map((name, i) => ({
        label: name, stroke: colours[i % colours.length], width: 2,
      }))),
    }, [xs].concat(names.map((name) => series[name])), figure);
    // What the chart shows, in words a test or a screen reader can read.
    figure.dataset.series = names.join(",");
    figure.dataset.points = String(xs.length);
    for (const name of names) {
      const key = "data-max-" + name.toLowerCase().replace(/[^a-z0-9]+/g, "-");
      figure.setAttribute(key, String(Math.max(0, ...series[name])));
      const total = series[name].reduce((sum, value) => sum + (value || 0), 0);
      figure.setAttribute(key.replace("data-max-", "data-total-"), String(total));
    }
  }

  draw("chart-revenue", data.days, data.revenue);
  draw("chart-orders", data.days, { orders: data.orders });
  draw("chart-markets", data.steps, data.markets);
  draw("chart-machinery", data.steps, data.machinery);
})();
