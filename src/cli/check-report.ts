// What `config check` prints as it goes: one line per problem (field first), warnings and skipped checks marked
// as such, and a summary line at the end.

export class CheckReport {
  problems = 0;
  warnings = 0;
  /** Keys found on their token and proved against their certificate. */
  keysProved = 0;

  constructor(private readonly out: (line: string) => void) {}

  problem(line: string): void {
    this.problems++;
    this.out(line);
  }

  warning(line: string): void {
    this.warnings++;
    this.out(`warning: ${line}`);
  }

  /** A check that could not run because an earlier one failed (not counted again). */
  skipped(line: string): void {
    this.out(`skipped: ${line}`);
  }

  /** Prints the summary; true when nothing is wrong (warnings allowed). */
  finish(file: string): boolean {
    const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    const extra = [`${plural(this.keysProved, 'key')} proved`, ...(this.warnings ? [plural(this.warnings, 'warning')] : [])].join(', ');
    this.out(`config check: ${this.problems === 0 ? 'no problems' : plural(this.problems, 'problem')} in ${file} (${extra})`);
    return this.problems === 0;
  }
}
