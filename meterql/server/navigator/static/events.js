// The Events page: the events-per-hour chart (Chart.js), drawn from the canvas's data-chart.
import { Chart } from "./vendor/chart.js";

const canvas = document.getElementById("events-chart");
if (canvas) {
  const data = JSON.parse(canvas.dataset.chart || "{}");
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels || [],
      datasets: [{ label: data.label || "events per hour", data: data.counts || [],
                   backgroundColor: "#2557c7" }],
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}
// Voiding asks first (the form still works without this script).
for (const form of document.querySelectorAll("form.void")) {
  form.addEventListener("submit", (event) => {
    const label = form.querySelector("button").getAttribute("aria-label") || "Void";
    if (!window.confirm(`${label}? The event leaves usage (kept in the history).`)) {
      event.preventDefault();
    }
  });
}
