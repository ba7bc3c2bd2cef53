/**
 * @tessera/distributed: data-parallel training over MPI. `ProcessGroup` is a small N-API
 * binding to MPI's collectives; `GradientSyncCallback` makes a Trainer data-parallel;
 * `launchedWorld` / `mpirunCommand` find and start a job.
 */
export * from './addon.js';
export * from './group.js';
export * from './launch.js';
export * from './sync.js';
