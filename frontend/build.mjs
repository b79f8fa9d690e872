// Builds the navigator's components into ../meterql/server/navigator/static/vendor: one ES module
// per component, minified, with the licences of what they bundle. Run: npm ci && npm run build
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = "../meterql/server/navigator/static/vendor";
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { editor: "src/editor.js", grid: "src/grid.js", chart: "src/chart.js" },
  bundle: true, minify: true, format: "esm", outdir: out, legalComments: "linked",
  target: ["es2020"],
});
copyFileSync("node_modules/htmx.org/dist/htmx.min.js", `${out}/htmx.min.js`);
copyFileSync("node_modules/tabulator-tables/dist/css/tabulator_simple.min.css", `${out}/tabulator.min.css`);
console.log(`built into ${out}`);
