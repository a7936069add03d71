// Metric names a PromQL expression (or a Grafana query with $variables) reads: enough PromQL to find them.
const KEYWORDS = new Set([
  'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan',
]);
// Clauses whose parenthesised list holds label names, not series.
const LABEL_LISTS = /\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g;

/** Every metric name read by `expr`, without duplicates, in order of appearance. */
export function promqlMetricNames(expr: string): string[] {
  const names: string[] = [];
  // `{__name__="x"}` names a series too; a regex match on it is not followed (none of our files use one).
  for (const m of expr.matchAll(/__name__\s*=\s*"([^"]+)"/g)) names.push(m[1]!);
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings: label values, regexes
    .replace(/\{[^}]*\}/g, ' ') // label matchers (Grafana's ${var} too)
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery durations
    .replace(/\$\w+/g, ' ') // Grafana variables ($__rate_interval, $job)
    .replace(LABEL_LISTS, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ')
    .replace(/@\s*[\w.()]+/g, ' ');
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\(?))/g)) {
    const word = m[0];
    const before = bare[m.index! - 1];
    if (before !== undefined && /[0-9.]/.test(before)) continue; // 1e3, 0x1f, 5m left after a number
    if (m[1] === '(' || KEYWORDS.has(word.toLowerCase())) continue; // a function call or an operator word
    names.push(word);
  }
  return [...new Set(names)];
}

/** The metric a Grafana variable query reads: `label_values(metric{...}, label)` or a PromQL `query_result(...)`. */
export function grafanaVariableMetricNames(query: string): string[] {
  const lv = /^\s*label_values\((.*),\s*\w+\s*\)\s*$/.exec(query);
  if (lv) return promqlMetricNames(lv[1]!);
  const qr = /^\s*query_result\((.*)\)\s*$/.exec(query);
  if (qr) return promqlMetricNames(qr[1]!);
  return [];
}
