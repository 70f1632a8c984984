/** Where the duplicati-server-util stand-in lives, and the job records its state folder holds. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/standins/duplicati-server-util (source tree: it is a script, not compiled). */
export const DUPLICATI_STANDIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'standins', 'duplicati-server-util');

/** One job of the stand-in's simulated server (see the stand-in's header). */
export interface StandinJob {
  id: string;
  name: string;
  /** How long a run takes. */
  seconds?: number;
  /** The run fails with this error (the job's result records it). */
  fail?: string;
  /** `run` itself is refused with this message. */
  run_error?: string;
  /** The run lasts until this file exists. */
  until?: string;
  /** A command whose output is recorded when the run starts (e.g. podman ps). */
  record?: string[];
}
