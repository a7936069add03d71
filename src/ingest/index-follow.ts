// The index follower: imports a CA's OpenSSL index.txt at startup and whenever it changes, as `openssl ocsp -index`
// rereads it. A file that cannot be read or parsed changes nothing: the statuses imported before stay, and the
// file is tried again once it changes (a store failure: at the next check).
import type { Clock } from '../clock';
import { LateAnswers, recordedLate } from '../compliance/late-answers';
import { IndexParseError } from '../pki/openssl-index';
import type { ImportResult, StatusStore } from '../store/status-store';
import { FileVersion, fileVersion, IndexFileError, mtimeOf, readIndexFile, sameVersion } from './index-import';

export interface IndexFollowCa {
  name: string;
  /** Absolute path of index.txt. */
  file: string;
}

/** Why an import failed; also the `result` label of the import counter. */
export type IndexFailure = 'invalid' | 'missing' | 'unreadable' | 'store_error';

export type PollOutcome =
  | { status: 'imported'; entries: number; result: ImportResult }
  /** The file is the one imported last. */
  | { status: 'unchanged' }
  /** Written to while read, or gone for one check (`openssl ca` renames index.txt away and back): next check. */
  | { status: 'changing'; message: string }
  /** Nothing written; `repeated`: the same failure as the last check, not logged again. */
  | { status: 'failed'; reason: IndexFailure; message: string; repeated: boolean };

/** What the metrics read: the state of one CA's follower. */
export interface IndexFollowState {
  ca: string;
  lastImportAt: Date | undefined;
  failing: boolean;
  /** Entries of the last import that a final revocation kept from applying (README "Status rules"). */
  keptRevoked: number;
}

export interface IndexFollowOptions {
  store: StatusStore;
  ca: IndexFollowCa;
  clock: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Counts each import attempt by result (`ok` or an IndexFailure). */
  count?: (ca: string, result: 'ok' | IndexFailure) => void;
  /** Called after an import was committed, so this process's caches hear of it (SQLite tells other processes only). */
  onApplied?: () => void;
  /** Told of certificates new to the store more than 15 minutes after the file was written (BR 4.9.9). */
  late?: LateAnswers;
}

export class IndexFollower {
  /** The version imported last. */
  private imported: FileVersion | undefined;
  private lastImportAt: Date | undefined;
  private keptRevoked = 0;
  /** The failure in force, if the last attempt failed; `version`: the file that failed to read or parse. */
  private failure: { reason: IndexFailure; message: string; version: FileVersion | undefined } | undefined;
  private missingChecks = 0;
  private polling: Promise<PollOutcome> | undefined;

  constructor(private readonly o: IndexFollowOptions) {}

  /** One check; polls never overlap (a call during one returns the one in progress). */
  poll(): Promise<PollOutcome> {
    this.polling ??= this.check().finally(() => (this.polling = undefined));
    return this.polling;
  }

  /** Resolves once no check is running (one in progress has committed its import or written nothing). */
  async settled(): Promise<void> {
    await this.polling?.catch(() => undefined);
  }

  state(): IndexFollowState {
    return { ca: this.o.ca.name, lastImportAt: this.lastImportAt, failing: this.failure !== undefined, keptRevoked: this.keptRevoked };
  }

  private async check(): Promise<PollOutcome> {
    const { name: ca, file } = this.o.ca;
    let version: FileVersion;
    try {
      version = fileVersion(file);
    } catch (e) {
      if (!(e instanceof IndexFileError)) throw e;
      if (e.reason === 'unreadable') return this.fail('unreadable', e.message, undefined);
      // Missing at two checks in a row is no rename in progress.
      if (++this.missingChecks < 2) return { status: 'changing', message: e.message };
      return this.fail('missing', e.message, undefined);
    }
    this.missingChecks = 0;
    if (!this.failure && sameVersion(version, this.imported)) return { status: 'unchanged' };
    // The same bad file again: no point in reading it (a store failure is retried at every check).
    const f = this.failure;
    if (f && f.reason !== 'store_error' && sameVersion(version, f.version)) return { status: 'failed', reason: f.reason, message: f.message, repeated: true };
    let index;
    try {
      index = readIndexFile(file, ca);
    } catch (e) {
      if (e instanceof IndexFileError) {
        if (e.reason === 'changing' || e.reason === 'missing') return { status: 'changing', message: e.message };
        return this.fail(e.reason, e.message, version);
      }
      if (e instanceof IndexParseError) return this.fail('invalid', e.message, version);
      throw e;
    }
    let result: ImportResult;
    try {
      result = await this.o.store.putCertificates(index.records);
    } catch (e) {
      return this.fail('store_error', `${file}: cannot write to the store: ${(e as Error).message}`, index.version);
    }
    this.imported = index.version;
    this.failure = undefined;
    this.lastImportAt = this.o.clock.now();
    this.keptRevoked = result.keptRevoked;
    this.o.onApplied?.();
    this.o.count?.(ca, 'ok');
    // Every line was written by the file's mtime: a certificate new to the store was published at the latest then.
    const late = recordedLate(result.inserted, mtimeOf(index.version), this.lastImportAt);
    if (late > 0) this.o.late?.recordedLate(ca, 'index', late);
    const entries = index.records.length;
    this.o.log.info({ ca, file, entries, ...result }, 'index.txt imported');
    if (result.keptRevoked > 0) {
      this.o.log.warn(
        { ca, file, keptRevoked: result.keptRevoked },
        'index.txt: kept final revocations as stored: the file said good, certificateHold, or another reason or date (README "Status rules")',
      );
    }
    return { status: 'imported', entries, result };
  }

  /** Counts a failed attempt unless it found nothing new; logs a failure once, until it differs or an import succeeds. */
  private fail(reason: IndexFailure, message: string, version: FileVersion | undefined): PollOutcome {
    const repeated = this.failure?.reason === reason && this.failure.message === message;
    // Still missing, or its directory still cannot be read: nothing was tried.
    if (repeated && version === undefined) return { status: 'failed', reason, message, repeated };
    this.failure = { reason, message, version };
    this.o.count?.(this.o.ca.name, reason);
    if (!repeated) this.o.log.warn({ ca: this.o.ca.name, file: this.o.ca.file, reason, err: message }, 'index.txt import failed: nothing changed');
    return { status: 'failed', reason, message, repeated };
  }
}
