// Reads and validates the YAML config; errors name the file and the field.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { scrub, secretsIn } from './redaction';
import { Config, configSchema } from './schema';
import { describeYamlProblem } from './yaml-problem';

export class ConfigError extends Error {
  override name = 'ConfigError';
  /** One line per problem (one per schema issue, field first), for `config check`. */
  readonly problems: string[];
  constructor(message: string, problems: string[] = [message]) {
    super(message);
    this.problems = problems;
  }
}

export interface LoadedConfig {
  config: Config;
  /** Resolves a path from the config file relative to the file's directory. */
  path(p: string): string;
  file: string;
}

export function loadConfig(file: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return validateConfig(parseYaml(text, file), file);
}

/** The YAML's value; a syntax error names line and column with the secrets in its excerpt masked. */
function parseYaml(text: string, file: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines });
  const secrets = secretsIn(text);
  const describe = (e: Parameters<typeof describeYamlProblem>[0]) => scrub(describeYamlProblem(e, text, lines), secrets);
  // As yaml's parse() does, warnings (an unknown tag) are emitted and parsing goes on; but with masked excerpts.
  for (const w of doc.warnings) process.emitWarning(`${file}: ${describe(w)}`, 'YAMLWarning');
  const first = doc.errors[0];
  if (first) throw new ConfigError(`${file}: not valid YAML: ${describe(first)}`);
  try {
    return doc.toJS();
  } catch (e) {
    throw new ConfigError(`${file}: not valid YAML: ${scrub((e as Error).message, secrets)}`);
  }
}

export function validateConfig(raw: unknown, file: string): LoadedConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    // Some messages quote the value (an enum's "received '…'"): a URL pasted into the wrong field keeps its password.
    const secrets = secretsIn(raw);
    const problems = result.error.issues.map((i) => scrub(`${formatPath(i.path)}: ${i.message}`, secrets));
    throw new ConfigError(`${file}: invalid configuration:\n${problems.map((l) => `  ${l}`).join('\n')}`, problems);
  }
  return loadedConfigOf(result.data, file);
}

/** A config validated elsewhere (a serving process gets its primary's), with paths resolved against `file`'s directory. */
export function loadedConfigOf(config: Config, file: string): LoadedConfig {
  const base = dirname(resolve(file));
  return { config, file, path: (p) => resolve(base, p) };
}

function formatPath(path: (string | number)[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
