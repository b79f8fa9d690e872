// The results grid: Tabulator, virtual rendering so 10,000 rows stay responsive.
import { TabulatorFull as Tabulator } from "tabulator-tables";
export { Tabulator };
