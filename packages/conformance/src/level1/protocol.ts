/** What the parent sends the level-1 child (as JSON in argv[2]). */
export interface Level1Request {
  backend: string;
  /** Modules to import first: they register the backend (package names or file paths). */
  imports: string[];
  /** Only specs whose full name contains this (case-insensitive); all when empty. */
  filter?: string;
  /** Only specs with exactly these full names (the retry of those that failed); overrides filter. */
  names?: string[];
}

/** What the child sends back over IPC. */
export interface Level1Report {
  ok: boolean;
  /** Why the child could not run the suite (no backend, two engines...). */
  error?: string;
  passed: string[];
  failed: { name: string; message: string }[];
  pending: number;
  isDataSync: boolean;
  tfjsCoreVersion: string;
  durationMs: number;
}

/** Prefix of the line the child writes to stderr as each spec starts. */
export const SPEC_MARKER = '[tessera-level1] spec: ';
