// A YAML syntax problem described with its line, column and source excerpt, secrets masked: the yaml library's own
// excerpt shows whatever the lines hold (a store.url with its password), so it is rebuilt here from redacted lines.
import type { LineCounter, YAMLError } from 'yaml';
import { redactSecrets, redactYamlLine } from './redaction';

const MAX_WIDTH = 80;

// Lines whose role is plain: blank, a comment, a `key:` (its value masked when secret), a sequence item, a flow
// bracket or a document marker. Any other line continues a multi-line scalar whose key is out of sight, and may
// hold part of a password; it is left out.
const PLAIN_LINE = /^\s*(?:$|#|(?:-\s+)*["']?[\w.-]+["']?\s*:(?:\s|$)|-(?:\s|$)|[[\]{}]|---|\.\.\.)/;

/** e.g. `Missing closing "quote at line 4, column 1:` and the lines around it, secrets masked. */
export function describeYamlProblem(e: YAMLError, text: string, lines: LineCounter): string {
  // The escape sequence is a piece of the string it is in (a password with a backslash); the column says where.
  const message = e.code === 'BAD_DQ_ESCAPE' ? 'Invalid escape sequence in a double-quoted string (a backslash needs \\\\)' : redactSecrets(e.message);
  if (e.pos[0] < 0) return message;
  const { line, col } = lines.linePos(e.pos[0]);
  const at = `${message} at line ${line}, column ${col}`;
  const source = (n: number) => text.substring(lines.lineStarts[n - 1]!, lines.lineStarts[n] ?? text.length).replace(/[\n\r]+$/, '');
  const current = source(line);
  if (!PLAIN_LINE.test(current)) return `${at} (the line is not shown: it continues a value that may hold a secret)`;
  const shown = redactYamlLine(current);
  // As the yaml library does: the line before too when the problem is at the start of this one.
  const previous = line > 1 && /^\s*$/.test(current.substring(0, col - 1)) ? source(line - 1) : undefined;
  const context = previous !== undefined && PLAIN_LINE.test(previous) ? [fit(redactYamlLine(previous), 0).text] : [];
  const { text: lineText, col: ci } = fit(shown, col - 1);
  // No pointer where masking moved the column.
  const pointer = shown.substring(0, col - 1) === current.substring(0, col - 1) ? [' '.repeat(ci) + '^'] : [];
  if (!/[^ ]/.test([...context, lineText].join(''))) return at;
  return `${at}:\n\n${[...context, lineText, ...pointer].join('\n')}\n`;
}

/** The line cut to MAX_WIDTH around the column, and where the column is in what is left. */
function fit(line: string, col: number): { text: string; col: number } {
  let text = line;
  let ci = col;
  if (ci >= 60 && text.length > MAX_WIDTH) {
    const start = Math.min(ci - 39, text.length - (MAX_WIDTH - 1));
    text = '…' + text.substring(start);
    ci -= start - 1;
  }
  if (text.length > MAX_WIDTH) text = text.substring(0, MAX_WIDTH - 1) + '…';
  return { text, col: ci };
}
