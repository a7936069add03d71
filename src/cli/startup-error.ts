// The error a daemon or command start-up fails with: its message names the token, key or config field.
export class StartupError extends Error {
  override name = 'StartupError';
}
