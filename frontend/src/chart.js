// Charts: Chart.js with every component registered.
import { Chart, registerables } from "chart.js";
Chart.register(...registerables);
export { Chart };
