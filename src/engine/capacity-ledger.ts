/**
 * What is taken of a pool's capacity: cpus, GPUs, memory and task slots,
 * and which GPUs (gpu-devices.ts). One ledger per pool: a run's own, or the
 * one a server's runs share (shared-pool.ts); the scheduler works on a copy
 * of its figures with the same arithmetic (`addDemand`).
 */
import type { ResourceDemand } from "../plan/index.js";
import { GpuDevices } from "./gpu-devices.js";

export interface Capacity {
  cpu: number;
  gpu: number;
  memoryBytes: number;
}

/** Adds (`sign` 1) or takes back (-1) a group's demand to `used`, in place. */
export function addDemand(used: Capacity, demand: ResourceDemand, sign: 1 | -1 = 1): void {
  used.cpu += sign * demand.cpu;
  used.gpu += sign * demand.gpu;
  used.memoryBytes += sign * demand.memoryBytes;
}

export function fits(demand: ResourceDemand, used: Capacity, capacity: Capacity): boolean {
  return (
    used.cpu + demand.cpu <= capacity.cpu &&
    used.gpu + demand.gpu <= capacity.gpu &&
    used.memoryBytes + demand.memoryBytes <= capacity.memoryBytes
  );
}

export class CapacityLedger {
  readonly used: Capacity = { cpu: 0, gpu: 0, memoryBytes: 0 };
  /** Tasks of admitted groups that have not ended. */
  activeTasks = 0;
  /** Which GPUs are whose. */
  readonly gpuDevices: GpuDevices;

  constructor(readonly capacity: Capacity) {
    this.gpuDevices = new GpuDevices(capacity.gpu);
  }

  take(demand: ResourceDemand, tasks: number): void {
    addDemand(this.used, demand);
    this.activeTasks += tasks;
  }

  give(demand: ResourceDemand, tasks: number): void {
    addDemand(this.used, demand, -1);
    this.activeTasks -= tasks;
  }

  /** What the scheduler may count as used: GPUs held for resumed runs not started yet (GpuDevices.hold) are not free either. */
  usedForScheduling(): Capacity {
    return { ...this.used, gpu: Math.max(this.used.gpu, this.capacity.gpu - this.gpuDevices.available) };
  }
}
