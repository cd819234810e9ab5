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

  constructor(count: number) {
    this.free = Array.from({ length: Math.max(0, count) }, (_, i) => i);
  }

  get available(): number {
    return this.free.length;
  }

  /**
   * The `counts[i]` lowest free GPUs for each of a group's tasks. The scheduler
   * admits a group only when there are enough; a resumed group on a pool now
   * configured with fewer gets what is free.
   */
  take(counts: readonly number[]): number[][] {
    const taken = this.free.splice(
      0,
      counts.reduce((sum, n) => sum + n, 0),
    );
    let next = 0;
    return counts.map((n) => taken.slice(next, (next += n)));
  }

  /** These GPUs, which a resumed run's members had (and have, running on); undefined, taking none, unless all are free. */
  takeThese(devices: readonly number[][]): number[][] | undefined {
    const wanted = devices.flat();
    if (!wanted.every((index) => this.free.includes(index))) return undefined;
    this.free = this.free.filter((index) => !wanted.includes(index));
    return devices.map((d) => [...d]);
  }

  give(devices: readonly number[][]): void {
    this.free = [...this.free, ...devices.flat()].sort((a, b) => a - b);
  }
}
