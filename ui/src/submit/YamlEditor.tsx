/**
 * The workflow's YAML in CodeMirror 6: highlighting, line numbers, undo, completion of keys from the workflow's
 * JSON Schema (schema-completion.ts), the server's diagnostics shown at their
 * lines (set from outside: the server checks, not the page). Tab moves focus on (Escape first, as CodeMirror's
 * accessibility guidance has it), so the keyboard never gets stuck in the editor.
 */
import { autocompletion } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { yaml } from "@codemirror/lang-yaml";
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import { EditorView, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { useEffect, useRef } from "react";
import type { EditorMark } from "./diagnostics";
import { schemaKeys } from "./schema-completion";

export function YamlEditor({
  initial,
  marks,
  onChange,
  label,
}: {
  initial: string;
  marks: readonly EditorMark[];
  onChange: (text: string) => void;
  label: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | undefined>(undefined);

  useEffect(() => {
    const editor = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: initial,
        extensions: [
          lineNumbers(),
          history(),
          indentOnInput(),
          bracketMatching(),
          highlightActiveLine(),
          syntaxHighlighting(defaultHighlightStyle),
          yaml(),
          lintGutter(),
          // The schema's keys where the cursor is; Enter or Tab takes the one chosen, Escape closes the list.
          autocompletion({ override: [schemaKeys] }),
          keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
          EditorView.contentAttributes.of({ "aria-label": label }),
          EditorView.updateListener.of((update) => {
            if (update.docChanged) onChange(update.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = editor;
    return () => editor.destroy();
    // The editor is made once; its text is the user's from then on (onChange: a state setter, the same each render).
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    const editor = view.current;
    if (!editor) return;
    const length = editor.state.doc.length;
    const clamped = marks.map((m) => ({
      from: Math.min(m.from, length),
      to: Math.min(m.to, length),
      severity: m.severity,
      message: m.message,
    }));
    editor.dispatch(setDiagnostics(editor.state, clamped));
  }, [marks]);

  return <div className="yaml-editor" ref={host} />;
}
