// Per PKCS#11 module (library path): calls in progress in any session thread, and re-initializations.
// C_Finalize while another thread is inside the module is undefined behaviour (SoftHSM2 frees what that call
// uses), so a re-initialization waits until no call is in progress, abandoned ones included.

export class ModuleCalls {
  private static readonly byPath = new Map<string, ModuleCalls>();
  /** Calls in progress on any thread, across all tokens of this module. */
  inFlight = 0;
  /** Bumped on every re-initialization: handles from an older generation are dead. */
  generation = 0;
  /**
   * Set once a session thread has initialized the module. C_Initialize is not safe to run in two threads at
   * once (SoftHSM2 then builds its state twice, and sessions opened on the first are gone): the first session
   * of a module opens alone, the others after it.
   */
  initialized = false;
  /** The first open, while it runs: another token of the module waits for it before opening its own. */
  initializing: Promise<unknown> | undefined;
  private readonly resetListeners = new Set<() => void>();

  static for(path: string): ModuleCalls {
    let m = ModuleCalls.byPath.get(path);
    if (!m) ModuleCalls.byPath.set(path, (m = new ModuleCalls()));
    return m;
  }

  /** Counts `call` as in progress until it settles. */
  track<T>(call: Promise<T>): Promise<T> {
    this.inFlight++;
    const done = () => void this.inFlight--;
    call.then(done, done);
    return call;
  }

  /** Tells every token of the module that its sessions and key handles are gone. */
  reset(): void {
    this.generation++;
    for (const l of this.resetListeners) l();
  }

  /** A token of this module: hears about re-initializations until it detaches (closes). */
  attach(onReset: () => void): () => void {
    this.resetListeners.add(onReset);
    return () => void this.resetListeners.delete(onReset);
  }

  /** Tokens of this module not closed yet: the last one to close finalizes the module. */
  get attached(): number {
    return this.resetListeners.size;
  }
}
