/**
 * Which of a pool's GPUs each task has: the scheduler counts GPUs like CPUs,
 * and this says which ones, so that two tasks that ask for one GPU each get
 * different ones (the runtimes pass them on: CUDA_VISIBLE_DEVICES on the
 * host, the GPUs' CDI devices or the engine's device request in containers).
 * A group's GPUs are taken when it is admitted and given back when its
 * capacity is (a restarted member keeps its GPUs).
 */
export class GpuDevices {
  /** Free device indices, lowest first. */
  private free: number[];
  /** Kept for the resumed runs whose running members have them, until those runs take them back (takeThese). */
  private readonly held = new Set<number>();

  constructor(readonly count: number) {
    this.free = Array.from({ length: Math.max(0, count) }, (_, i) => i);
  }

  get available(): number {
    return this.free.length;
  }

  /**
   * The `counts[i]` lowest free GPUs for each of a group's tasks. The scheduler
   * admits a group only when there are enough; a resumed group on a pool now
   * configured with fewer gets what is free (its tasks see only those).
   */
  take(counts: readonly number[]): number[][] {
    const taken = this.free.splice(
      0,
      counts.reduce((sum, n) => sum + n, 0),
    );
    let next = 0;
    return counts.map((n) => taken.slice(next, (next += n)));
  }

  /** These GPUs, which a resumed run's members had (and have, running on); undefined, taking none, unless all are free or held. */
  takeThese(devices: readonly number[][]): number[][] | undefined {
    const wanted = devices.flat();
    if (!wanted.every((index) => this.free.includes(index) || this.held.has(index))) return undefined;
    for (const index of wanted) this.held.delete(index);
    this.free = this.free.filter((index) => !wanted.includes(index));
    return devices.map((d) => [...d]);
  }

  /**
   * Keeps these from `take` until `takeThese` or `unhold`: a server holds the
   * GPUs of every run it resumes before it starts any of them (or anything new).
   */
  hold(devices: readonly number[][]): void {
    const indices = devices.flat().filter((index) => this.free.includes(index));
    for (const index of indices) this.held.add(index);
    this.free = this.free.filter((index) => !indices.includes(index));
  }

  /** Those of these still held go back (a resumed run that did not start). */
  unhold(devices: readonly number[][]): void {
    this.give([devices.flat().filter((index) => this.held.delete(index))]);
  }

  give(devices: readonly number[][]): void {
    this.free = [...this.free, ...devices.flat()].sort((a, b) => a - b);
  }
}
