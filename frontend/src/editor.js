// The workbench's SQL editor: CodeMirror 6 with SQL highlighting and completion of the
// catalog's tables, columns and functions (given by the page as a schema object).
import { EditorView, basicSetup } from "codemirror";
import { keymap } from "@codemirror/view";
import { sql, PostgreSQL } from "@codemirror/lang-sql";
import { EditorSelection } from "@codemirror/state";
import { completeFromList, ifNotIn } from "@codemirror/autocomplete";

export function createEditor(parent, { doc = "", schema = {}, functions = [], onRun, onChange } = {}) {
  // The catalog's functions complete as NAME( outside strings and comments.
  const functionNames = completeFromList(functions.map((name) => (
    { label: name, type: "function", apply: `${name}(` })));
  const completeFunctions = PostgreSQL.language.data.of({
    autocomplete: ifNotIn(["String", "QuotedIdentifier", "LineComment", "BlockComment"], functionNames),
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
      completeFunctions,
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
