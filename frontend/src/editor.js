// The workbench's SQL editor: CodeMirror 6 with SQL highlighting and completion of the
// catalog's tables, columns and functions (given by the page as a schema object).
import { EditorView, basicSetup } from "codemirror";
import { keymap } from "@codemirror/view";
import { sql, PostgreSQL } from "@codemirror/lang-sql";
import { EditorSelection } from "@codemirror/state";
import { completeFromList, ifNotIn } from "@codemirror/autocomplete";

export function createEditor(parent, { doc = "", schema = {}, functions = [], onRun, onChange } = {}) {
  // The catalog's functions complete as NAME( (operators left out), and a bare word completes
  // the columns of the tables the query names (source.schema.table), outside strings and
  // comments.
  const skip = ["String", "QuotedIdentifier", "LineComment", "BlockComment"];
  const functionNames = completeFromList(functions.filter((name) => /^[A-Za-z_]\w*$/.test(name))
    .map((name) => ({ label: name, type: "function", apply: `${name}(` })));
  const tables = Object.keys(schema);
  const columnsInQuery = (context) => {
    const word = context.matchBefore(/\w+/);
    if (!word && !context.explicit) return null;
    const before = context.state.sliceDoc(Math.max(0, context.pos - 1), context.pos);
    if (before === ".") return null;
    const query = context.state.doc.toString().toLowerCase();
    const options = [];
    for (const table of tables) {
      if (!query.includes(table.toLowerCase())) continue;
      for (const column of schema[table]) {
        const label = typeof column === "string" ? column : column.label;
        options.push({ label, type: "property", detail: table.split(".").pop(), boost: 10 });
      }
    }
    if (!options.length) return null;
    return { from: word ? word.from : context.pos, options, validFor: /^\w*$/ };
  };
  const completions = PostgreSQL.language.data.of({
    autocomplete: ifNotIn(skip, functionNames),
  });
  const columnCompletions = PostgreSQL.language.data.of({
    autocomplete: ifNotIn(skip, columnsInQuery),
  });
  const run = keymap.of([{ key: "Mod-Enter", run: () => { onRun && onRun(); return true; } }]);
  const view = new EditorView({
    doc,
    parent,
    extensions: [
      run,
      basicSetup,
      sql({ dialect: PostgreSQL, schema, upperCaseKeywords: true,
            defaultSchema: undefined }),
      completions,
      columnCompletions,
      EditorView.updateListener.of((u) => { if (u.docChanged && onChange) onChange(view); }),
      EditorView.contentAttributes.of({ "aria-label": "SQL" }),
    ],
  });
  view.meterqlFunctions = functions;
  return view;
}

// Select the span [from, to) of the document (an error's position) and scroll to it.
export function markError(view, from, to) {
  const end = Math.max(from + 1, to || from + 1);
  view.dispatch({ selection: EditorSelection.range(from, Math.min(end, view.state.doc.length)),
                  scrollIntoView: true });
  view.focus();
}

export function text(view) { return view.state.doc.toString(); }
