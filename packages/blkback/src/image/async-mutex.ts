/**
 * A FIFO async mutex: qcow2 metadata (refcounts, L1/L2) is changed by one
 * request at a time, while data I/O of many requests proceeds concurrently.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Run `f` holding the lock; the lock is released when its promise settles. */
  run<T>(f: () => Promise<T>): Promise<T> {
    const result = this.tail.then(f);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
