// The operations page: polls /ops/data and redraws its charts; no inline code (strict CSP).
"use strict";

(function () {
  const refreshMs = Number(document.body.dataset.refreshMs) || 5000;
  const colours = {
    paid: "#2e7d32", pending_payment: "#1565c0", out_of_stock: "#ef6c00",
    payment_declined: "#6a1b9a", provider_unavailable: "#c62828", error: "#4e342e",
    requests: "#1565c0", server_errors: "#c62828", p50: "#2e7d32", p95: "#ef6c00",
    p99: "#c62828", stockouts: "#ef6c00", backlog: "#1565c0", lag: "#6a1b9a",
    waiting: "#ef6c00", in_flight: "#1565c0", limit: "#c62828", admitted: "#2e7d32",
  };
  // The waiting room's figures, in the order the page shows them (as page.py renders them).
  const queueFigures = [
    ["waiting", "waiting"], ["in_flight", "in flight"], ["limit", "limit"],
    ["ticketed", "tickets given"], ["held", "told to wait again"], ["admitted", "let in"],
    ["refused", "tickets refused"],
  ];
  const charts = {};

  function width(figure) {
    return Math.max(280, figure.clientWidth - 16);
  }

  // Draws one chart; rebuilt when its series change (a new checkout outcome appears).
  function draw(id, at, series) {
    const figure = document.getElementById(id);
    const names = Object.keys(series);
    const key = names.join(",");
    let chart = charts[id];
    if (chart && chart.key !== key) {
      chart.plot.destroy();
      chart = undefined;
    }
    const data = [at].concat(names.map((name) => series[name]));
    if (!chart) {
      const plot = new uPlot({
        width: width(figure),
        height: 200,
        scales: { x: { time: true } },
        // Room for five-digit values (an outbox backlog in the thousands) beside the y axis.
        axes: [{}, { size: 64 }],
        series: [{}].concat(names.map((name) => ({
          label: name, stroke: colours[name] || "#37474f", width: 2, spanGaps: false,
        }))),
      }, data, figure);
      chart = charts[id] = { plot: plot, key: key };
    } else {
      chart.plot.setData(data);
    }
    // What the chart shows, in words a test or a screen reader can read.
    figure.dataset.series = key;
    figure.dataset.points = String(at.length);
    for (const name of names) {
      const values = series[name].filter((v) => v !== null);
      figure.setAttribute("data-max-" + name, values.length ? String(Math.max(...values)) : "");
    }
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
  }

  function rate(value) {
    return value === null ? "" : value.toFixed(2);
  }

  function showAlerts(alerts) {
    const rows = document.getElementById("alert-rows");
    rows.replaceChildren(...alerts.map((alert) => {
      const row = document.createElement("tr");
      const state = alert.firing ? "firing" : "ok";
      row.dataset.alert = alert.alert;
      row.dataset.state = state;
      cell(row, alert.alert);
      if (alert.summary) row.firstChild.title = alert.summary;
      cell(row, alert.severity || "");
      cell(row, alert.value !== null || alert.long_burn_rate === null
        ? rate(alert.value)
        : rate(alert.long_burn_rate) + " / " + rate(alert.short_burn_rate));
      cell(row, rate(alert.threshold));
      cell(row, state, "state");
      return row;
    }));
  }

  function showTotals(totals) {
    const list = document.getElementById("checkout-totals");
    list.replaceChildren(...Object.keys(totals.checkouts).sort().map((outcome) => {
      const item = document.createElement("div");
      item.dataset.outcome = outcome;
      const term = document.createElement("dt");
      term.textContent = outcome;
      const value = document.createElement("dd");
      value.textContent = String(totals.checkouts[outcome]);
      item.append(term, value);
      return item;
    }));
    document.getElementById("stockout-total").textContent = String(totals.stockouts);
    document.getElementById("promotions-running").textContent =
      totals.promotions_running === null ? "\u2014" : String(totals.promotions_running);
  }

  // The waiting room's panel: its figures and charts, or in words that it is off.
  function showQueue(queue, s) {
    document.getElementById("checkout-queue").dataset.state = queue ? "on" : "off";
    if (!queue) return;
    document.getElementById("queue-totals").replaceChildren(...queueFigures.map(([name, label]) => {
      const item = document.createElement("div");
      item.dataset.figure = name;
      const term = document.createElement("dt");
      term.textContent = label;
      const value = document.createElement("dd");
      value.textContent = String(queue[name]);
      item.append(term, value);
      return item;
    }));
    // Drawn only once shown, so each chart takes its figure's width.
    draw("chart-queue-waiting", s.at, { waiting: s.queue_waiting });
    draw("chart-queue-places", s.at, { in_flight: s.queue_in_flight, limit: s.queue_limit });
    draw("chart-queue-admitted", s.at, { admitted: s.queue_admitted_per_second });
    draw("chart-queue-wait", s.at, s.queue_wait_seconds);
  }

  function show(data) {
    const s = data.series;
    draw("chart-requests", s.at, {
      requests: s.requests_per_second, server_errors: s.server_errors_per_second,
    });
    draw("chart-latency", s.at, s.latency_seconds);
    draw("chart-checkouts", s.at, s.checkouts_per_minute);
    draw("chart-stockouts", s.at, { stockouts: s.stockouts_per_minute });
    draw("chart-promotions", s.at, s.promotion_uses_per_minute);
    draw("chart-outbox", s.at, { backlog: s.outbox_backlog, lag: s.outbox_lag_seconds });
    showAlerts(data.alerts);
    showTotals(data.totals);
    showQueue(data.totals.checkout_queue, s);
    const firing = data.alerts.filter((a) => a.firing).length;
    document.body.dataset.firing = String(firing);
    document.getElementById("status").textContent =
      "Updated " + new Date().toLocaleTimeString() + (firing ? " \u2014 " + firing + " firing" : "");
  }

  async function refresh() {
    try {
      const response = await fetch("/ops/data", { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        window.location.assign("/ops/login");
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      show(await response.json());
    } catch (error) {
      document.getElementById("status").textContent = "Update failed: " + error.message;
    }
    window.setTimeout(refresh, refreshMs);
  }

  window.addEventListener("resize", () => {
    for (const id of Object.keys(charts)) {
      charts[id].plot.setSize({ width: width(document.getElementById(id)), height: 200 });
    }
  });
  refresh();
})();
