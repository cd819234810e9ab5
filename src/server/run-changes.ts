/**
 * Who is told that a run changed: the HTTP thread notifies it for every run
 * whose updates or transitions the main thread committed (http-thread.ts),
 * and when a run ends; the streams that follow a run (stream-route.ts) read
 * on when told, instead of asking the database over and over.
 */
export class RunChanges {
  private readonly listeners = new Map<string, Set<() => void>>();
  /** Told of every run's changes (the web UI's list: changes-route.ts). */
  private readonly anyListeners = new Set<(id: string) => void>();

  /** Calls `listener` with the id of every run that changes, until the returned function is called. */
  onAny(listener: (id: string) => void): () => void {
    this.anyListeners.add(listener);
    return () => this.anyListeners.delete(listener);
  }

  /** Calls `listener` whenever run `id` changes, until the returned function is called. */
  on(id: string, listener: () => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
    };
  }

  notify(id: string): void {
    for (const listener of this.listeners.get(id) ?? []) listener();
    for (const listener of this.anyListeners) listener(id);
  }
}
