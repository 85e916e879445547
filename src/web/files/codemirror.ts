// The editor of the Files page: CodeMirror 6 with line numbers, undo history, search, bracket matching
// and syntax highlighting chosen by the file's name. Loaded on demand (a chunk of its own), so the
// other pages do not carry it.
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { json } from '@codemirror/lang-json';
import { python } from '@codemirror/lang-python';
import { yaml } from '@codemirror/lang-yaml';
import {
  bracketMatching,
  defaultHighlightStyle,
  indentOnInput,
  type LanguageSupport,
  StreamLanguage,
  type StreamParser,
  syntaxHighlighting,
} from '@codemirror/language';
import { fortran } from '@codemirror/legacy-modes/mode/fortran';
import { julia } from '@codemirror/legacy-modes/mode/julia';
import { r } from '@codemirror/legacy-modes/mode/r';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import { toml } from '@codemirror/legacy-modes/mode/toml';
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search';
import { EditorState, type Extension } from '@codemirror/state';
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from '@codemirror/view';

const legacy = (p: StreamParser<unknown>) => StreamLanguage.define(p);

/** The language of a file by its name (and its first line, for scripts without an extension). */
export function languageFor(name: string, firstLine = ''): { label: string; ext: () => Extension } | null {
  const lower = name.toLowerCase();
  const ext = lower.includes('.') ? lower.slice(lower.lastIndexOf('.') + 1) : '';
  const pick = (label: string, f: () => Extension | LanguageSupport) => ({ label, ext: f });
  if (['py', 'pyw'].includes(ext) || /^#!.*python/.test(firstLine)) return pick('Python', () => python());
  if (['json', 'ipynb'].includes(ext)) return pick('JSON', () => json());
  if (['yaml', 'yml'].includes(ext)) return pick('YAML', () => yaml());
  if (
    ['sh', 'bash', 'zsh', 'sbatch', 'slurm', 'job', 'pbs'].includes(ext) ||
    ['.bashrc', '.profile', '.bash_profile'].includes(lower) ||
    /^#!.*\b(ba|z|k)?sh\b/.test(firstLine)
  )
    return pick('Shell', () => legacy(shell as StreamParser<unknown>));
  if (ext === 'r') return pick('R', () => legacy(r as StreamParser<unknown>));
  if (ext === 'jl') return pick('Julia', () => legacy(julia as StreamParser<unknown>));
  if (['f', 'f90', 'f95', 'f03', 'for'].includes(ext))
    return pick('Fortran', () => legacy(fortran as StreamParser<unknown>));
  if (ext === 'toml') return pick('TOML', () => legacy(toml as StreamParser<unknown>));
  return null;
}

export interface EditorHandle {
  text(): string;
  setText(text: string): void;
  focus(): void;
  destroy(): void;
}

// The page's CSP allows no inline <style>: in a shadow root, CodeMirror's styles go into a constructed
// style sheet instead (adoptedStyleSheets), which the policy does not restrict.
const theme = EditorView.theme({
  '&': { minHeight: '20rem', maxHeight: '70vh', fontSize: '0.88rem', backgroundColor: '#fff' },
  '.cm-scroller': { fontFamily: 'var(--mono, monospace)', overflow: 'auto', minHeight: '20rem' },
  '&.cm-focused': { outline: 'none' },
});

export function createEditor(
  host: HTMLElement,
  opts: { text: string; name: string; label: string; onChange(): void; onSave(): void },
): EditorHandle {
  const lang = languageFor(opts.name, opts.text.split('\n', 1)[0]);
  const shadow = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
  const parent = document.createElement('div');
  shadow.appendChild(parent);
  const view = new EditorView({
    root: shadow,
    parent,
    state: EditorState.create({
      doc: opts.text,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        keymap.of([
          {
            key: 'Mod-s',
            preventDefault: true,
            run: () => {
              opts.onSave();
              return true;
            },
          },
          ...defaultKeymap,
          ...historyKeymap,
          ...searchKeymap,
          indentWithTab,
        ]),
        theme,
        EditorView.contentAttributes.of({ 'aria-label': opts.label }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) opts.onChange();
        }),
        ...(lang ? [lang.ext()] : []),
      ],
    }),
  });
  return {
    text: () => view.state.doc.toString(),
    setText: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    focus: () => view.focus(),
    destroy: () => {
      view.destroy();
      parent.remove();
    },
  };
}
