/**
 * What a feature hands the app: its routes, and background work the process runs
 * according to ROLE (web nodes serve routes; worker nodes run workers; `all` does both).
 */
import type Router from '@koa/router';

export interface Feature {
  readonly name: string;
  readonly routes?: Router;
  /** Background loops (outbox workers, follower sync); started on ROLE=worker|all. */
  startWorkers?(): void | Promise<void>;
  /** Stops loops and releases resources; called once at shutdown. */
  stop?(): Promise<void>;
}
