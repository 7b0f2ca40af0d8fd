// Draws the usage report's charts from the JSON the page embeds (Chart.js, vendored).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("usage-chart-data").textContent);
  const palette = ["#417690", "#e07b39", "#79aec8", "#5b9a68", "#c94f4f", "#8a6fb5", "#b59b3c"];
  const drawn = {};
  function chart(id, type, datasets, stacked) {
    const element = document.getElementById(id);
    drawn[id] = new Chart(element, {
      type: type,
      data: {
        labels: data.labels,
        datasets: datasets.map((set, index) => Object.assign({
          backgroundColor: palette[index % palette.length],
          borderColor: palette[index % palette.length],
        }, set)),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { stacked: stacked }, y: { stacked: stacked, beginAtZero: true } },
      },
    });
  }
  chart("chart-requests", "bar", [{ label: "requests", data: data.requests }], false);
  chart("chart-tokens", "bar", Object.entries(data.tokens).map(([name, values]) => ({
    label: name.replace(/_tokens$/, "").replace(/_/g, " "), data: values,
  })), true);
  chart("chart-outcomes", "bar", Object.entries(data.outcomes).map(([name, values]) => ({
    label: name, data: values,
  })), true);
  chart("chart-cost", "line", [{ label: "USD", data: data.cost }], false);
  chart("chart-latency", "line", [
    { label: "TTFT p50", data: data.ttft_p50 },
    { label: "TTFT p95", data: data.ttft_p95 },
    { label: "duration p50", data: data.duration_p50 },
    { label: "duration p95", data: data.duration_p95 },
  ], false);
  window.usageCharts = drawn;  // for the page's browser test
})();
