// Reads and validates the YAML config; errors name the file and the field.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { Config, configSchema } from './schema';

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
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  return validateConfig(raw, file);
}

export function validateConfig(raw: unknown, file: string): LoadedConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
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
