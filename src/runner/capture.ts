/**
 * The capture side of the seam: while steps run, their events are spooled into a
 * private staging folder (mkdtemp, 0700) inside --out; when capture ends each step
 * gets a meta file and the folder becomes DIR/raw:
 *   raw/<step>.ndjson     the gadget's events as encoded (not transformed)
 *   raw/<step>.meta.json  gadget, fields, status, events, lost, reason, warnings,
 *                         what ended the step, its duration, the workload
 *   raw/run.json          the run as a whole: node, kernel, start, signal, error
 * Secrets are masked (redact.ts) as the spools are sealed: nothing in DIR/raw holds them.
 * Evaluation (evaluate.ts) reads only these files, so it can run on a directory
 * captured earlier, elsewhere, or merged from several nodes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ArtifactError, makePrivateDir, writeTextAtomic } from './artifacts.ts';
import { ownedName } from './ownership.ts';
import type { Redactor } from './redact.ts';
import type { CanarySummary, ExplainedReason, InstanceRecord, StepEnd, StepStatus, WorkloadSummary } from './summary.ts';
import type { ContainerSelection } from '../containers/selection.ts';
import type { RawPart } from './enrich.ts';


export const RAW_DIR = 'raw';
/** staging folders are `.capture@<pid>-<starttime>-XXXXXX` (ownership.ts): a later run removes a gone run's */
export const CAPTURE_PREFIX = '.capture';

export interface StepMeta {
  id: string;
  gadget: string;
  /** the gadget's event fields, in order (CSV columns) */
  fields: string[];
  status: StepStatus;
  events: number;
  lost: number;
  /** events not written past the step's max_bytes */
  truncated?: number;
  reason?: string;
  why?: ExplainedReason;
  warnings?: string[];
  ended?: StepEnd;
  durationMs: number;
  workload?: WorkloadSummary;
  /** a snapshot step stopped before its delay came (status not_run): its outputs are written empty */
  snapshot_not_taken?: boolean;
  /** an advise step's selection: the containers whose documents evaluation generates (PlannedStep.documents) */
  documents?: ContainerSelection;
  /** the step's liveness canary */
  canary?: CanarySummary;
  /** a cluster's merge: which node each stretch of the events came from, in order (src/k8s/cluster-run.ts mergeRaw) */
  parts?: RawPart[];
  /** a start_on step's instances (src/runner/triggers.ts) */
  instances?: InstanceRecord[];
  /** for_each values past max_instances, not traced */
  suppressed?: number;
}

/** What capture knows of the run as a whole (raw/run.json), so replay can say what the run said. */
export interface RunMeta {
  tool_version: string;
  node: string;
  kernel: string;
  startedAt: string;
  attachedAfterMs?: number;
  /** the signal that stopped the run */
  signal?: string;
  /** why the run could not go on */
  error?: string;
  /** every required step failed for a reason of the machine before capture (exit 3) */
  could_not_trace?: boolean;
}

export const RUN_META = 'run.json';

/** Step ids are names ([A-Za-z_][A-Za-z0-9_]*, recipe schema); anything else never reaches a path. */
function checkId(id: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(id)) throw new ArtifactError(`step id ${JSON.stringify(id)} cannot name a file (letters, digits, _)`);
  return id;
}

export function rawEventsPath(dir: string, id: string): string {
  return path.join(dir, RAW_DIR, `${checkId(id)}.ndjson`);
}

export function rawMetaPath(dir: string, id: string): string {
  return path.join(dir, RAW_DIR, `${checkId(id)}.meta.json`);
}

export class Capture {
  /** where spools are written while steps run */
  readonly staging: string;

  constructor(readonly outDir: string) {
    this.staging = makePrivateDir(outDir, ownedName(CAPTURE_PREFIX));
  }

  spoolPath(id: string): string {
    return path.join(this.staging, `${checkId(id)}.ndjson`);
  }

  /**
   * Write every step's meta next to its spool, then put the folder in place as DIR/raw
   * (replacing the raw record of an earlier run into the same --out).
   */
  async finish(metas: StepMeta[], run: RunMeta, redactor?: Redactor): Promise<string> {
    for (const meta of metas) {
      const spool = this.spoolPath(meta.id);
      if (fs.existsSync(spool)) {
        if (redactor) await redactor.file(spool);
        // spooled privately while it filled; sealed, it is an artifact like the outputs (0644)
        fs.chmodSync(spool, 0o644);
      }
      await writeTextAtomic(path.join(this.staging, `${checkId(meta.id)}.meta.json`), JSON.stringify(redactor ? redactor.value(meta) : meta, null, 2) + '\n');
    }
    await writeTextAtomic(path.join(this.staging, RUN_META), JSON.stringify(redactor ? redactor.value(run) : run, null, 2) + '\n');
    const raw = path.join(fs.realpathSync(this.outDir), RAW_DIR);
    try {
      // the record is for whoever reads --out; the staging folder was private while it filled
      fs.chmodSync(this.staging, 0o755);
      const old = fs.lstatSync(raw, { throwIfNoEntry: false });
      if (old?.isDirectory()) fs.renameSync(raw, `${this.staging}.old`);
      else if (old) fs.unlinkSync(raw);
      // a directory rename never follows or replaces a symlink planted meanwhile: it fails
      fs.renameSync(this.staging, raw);
      fs.rmSync(`${this.staging}.old`, { recursive: true, force: true });
    } catch (err) {
      throw new ArtifactError(`cannot move the captured events into ${raw}: ${(err as Error).message}; they are in ${this.staging}`, { cause: err });
    }
    return raw;
  }
}

/** The metas of a captured directory, by step id; a step with no meta was not captured. */
export function readMeta(dir: string, id: string): StepMeta | undefined {
  let text: string;
  try {
    text = fs.readFileSync(rawMetaPath(dir, id), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as StepMeta;
}

export function readRunMeta(dir: string): RunMeta | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, RAW_DIR, RUN_META), 'utf8')) as RunMeta;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
