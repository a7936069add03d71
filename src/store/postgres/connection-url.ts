// A PostgreSQL connection URL made safe to show: the password never reaches a log line or an error message.

/** The URL with its password (user info or `?password=`) replaced by `***`, also when the URL does not parse. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/([?&]password=)[^&]*/g, '$1***');
  }
}

/** Returns `text` with every form of the URL's password replaced by `***`. */
export function scrubPassword(url: string, text: string): string {
  for (const secret of passwords(url)) text = text.split(secret).join('***');
  return text;
}

function passwords(url: string): string[] {
  const found: string[] = [];
  try {
    const u = new URL(url);
    found.push(u.password, u.searchParams.get('password') ?? '');
  } catch {
    found.push(/\/\/[^:/@]*:([^@]*)@/.exec(url)?.[1] ?? '', /[?&]password=([^&]*)/.exec(url)?.[1] ?? '');
  }
  for (const raw of [...found]) {
    try {
      found.push(decodeURIComponent(raw));
    } catch {
      // A malformed escape: only the raw form can appear anywhere.
    }
  }
  // Longest first, so a password containing another one is replaced whole.
  return [...new Set(found)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}
