/**
 * The contract between `apt-repo ingest --json` and its readers (apt-ops upload): the shape of an
 * ingest report and a machine-readable `reasonCode` on every entry that has a reason, beside the
 * human `reason`. Readers decide on the code, never on the wording of the message; apt-ops
 * validates what it reads with IngestReportSchema (zod) before using it.
 */
import { z } from 'zod';

/** What happened to one incoming file. */
export type IngestStatus = 'accepted' | 'present' | 'rejected' | 'skipped';

/**
 * Why an entry was skipped, rejected or found present. `settling` (skipped: the file changed
 * recently or while being read: an upload still in progress, taken by the next run) is the one a
 * client retries on.
 */
export const INGEST_REASON_CODES = [
  // skipped
  'settling',
  'replaced',
  'changed-while-copied',
  'temporary-name',
  'symlink',
  'not-a-package',
  'outside-drop-folder',
  'bad-folder-name',
  'nested-folder',
  'unreadable-folder',
  // rejected
  'unknown-codename',
  'not-regular-file',
  'foreign-folder',
  'hard-link',
  'unreadable',
  'invalid-package',
  'unknown-architecture',
  'no-codename',
  'conflict',
  'version-reused',
  'environment',
  // present
  'already-present',
] as const;

/** One of INGEST_REASON_CODES. */
export type IngestReasonCode = (typeof INGEST_REASON_CODES)[number];

/** One row of the ingest report (`file` is relative to incomingDir, '/'-separated). */
export interface IngestEntry {
  status: IngestStatus;
  file: string;
  /** Why it was rejected, skipped or found present (for people). */
  reason?: string;
  /** The same, for programs: set whenever `reason` is. */
  reasonCode?: IngestReasonCode;
  package?: string;
  version?: string;
  architecture?: string;
  /** Accepted/present: the pool path (relative to the web root). */
  poolPath?: string;
  /** Accepted: the codenames it is published under. */
  codenames?: string[];
  /** Rejected: where the file went (absolute); undefined when it could not be moved (then it is left in place). */
  movedTo?: string;
}

/**
 * An ingest entry as read from `apt-repo ingest --json`. `reasonCode` is optional: an indexer
 * older than this contract (each stack deploys its own, so apt-ops may be newer) prints none.
 * Unknown keys are dropped.
 */
export const IngestEntrySchema = z.object({
  status: z.enum(['accepted', 'present', 'rejected', 'skipped']),
  file: z.string(),
  reason: z.string().optional(),
  reasonCode: z.enum(INGEST_REASON_CODES).optional(),
  package: z.string().optional(),
  version: z.string().optional(),
  architecture: z.string().optional(),
  poolPath: z.string().optional(),
  codenames: z.array(z.string()).optional(),
  movedTo: z.string().optional(),
});

/** The report `apt-repo ingest --json` prints (repo/ingest.ts IngestResult without `publish`'s details, which readers ignore). */
export const IngestReportSchema = z.object({
  entries: z.array(IngestEntrySchema),
  generation: z.string().optional(),
});

/** A validated ingest report. */
export type IngestReport = z.infer<typeof IngestReportSchema>;
