/**
 * The schema of troupe.db as an ordered list of migrations. The database's
 * `PRAGMA user_version` is the number of migrations applied; each migration is
 * applied in its own IMMEDIATE transaction that re-reads the version first, so
 * two processes opening a fresh database at once apply it exactly once.
 */
import type Database from "better-sqlite3";
import { TroupeError } from "../errors/index.js";

export interface Migration {
  /** 1, 2, 3, ...: the user_version the database has once this migration is applied. */
  version: number;
  description: string;
  up: (db: Database.Database) => void;
}

/**
 * A task row is its current attempt; these keep that attempt's row in task_attempts equal
 * to it, so the writer updates one row per task update. Attempt 0 comes with the task, a
 * new retry_id adds its row, and earlier attempts keep their last state.
 */
const V1_ATTEMPT_TRIGGERS = `
CREATE TRIGGER tasks_insert_attempt AFTER INSERT ON tasks BEGIN
  INSERT INTO task_attempts (run_id, group_idx, task_idx, retry_id, status, exit_code, ip, start_time, end_time, log_path)
  VALUES (NEW.run_id, NEW.group_idx, NEW.task_idx, NEW.retry_id, NEW.status, NEW.exit_code, NEW.ip, NEW.start_time, NEW.end_time,
          'runs/' || NEW.run_id || '/logs/' || NEW.name || '.' || NEW.retry_id || '.log');
END;
CREATE TRIGGER tasks_update_attempt AFTER UPDATE ON tasks BEGIN
  INSERT INTO task_attempts (run_id, group_idx, task_idx, retry_id, status, exit_code, ip, start_time, end_time, log_path)
  VALUES (NEW.run_id, NEW.group_idx, NEW.task_idx, NEW.retry_id, NEW.status, NEW.exit_code, NEW.ip, NEW.start_time, NEW.end_time,
          'runs/' || NEW.run_id || '/logs/' || NEW.name || '.' || NEW.retry_id || '.log')
  ON CONFLICT (run_id, group_idx, task_idx, retry_id) DO UPDATE SET
    status = excluded.status, exit_code = excluded.exit_code, ip = excluded.ip,
    start_time = excluded.start_time, end_time = excluded.end_time;
END;`;

/** The same, with the attempt's reason (migration 7). */
const ATTEMPT_TRIGGERS = `
CREATE TRIGGER tasks_insert_attempt AFTER INSERT ON tasks BEGIN
  INSERT INTO task_attempts (run_id, group_idx, task_idx, retry_id, status, exit_code, ip, start_time, end_time, reason, log_path)
  VALUES (NEW.run_id, NEW.group_idx, NEW.task_idx, NEW.retry_id, NEW.status, NEW.exit_code, NEW.ip, NEW.start_time, NEW.end_time,
          NEW.reason, 'runs/' || NEW.run_id || '/logs/' || NEW.name || '.' || NEW.retry_id || '.log');
END;
CREATE TRIGGER tasks_update_attempt AFTER UPDATE ON tasks BEGIN
  INSERT INTO task_attempts (run_id, group_idx, task_idx, retry_id, status, exit_code, ip, start_time, end_time, reason, log_path)
  VALUES (NEW.run_id, NEW.group_idx, NEW.task_idx, NEW.retry_id, NEW.status, NEW.exit_code, NEW.ip, NEW.start_time, NEW.end_time,
          NEW.reason, 'runs/' || NEW.run_id || '/logs/' || NEW.name || '.' || NEW.retry_id || '.log')
  ON CONFLICT (run_id, group_idx, task_idx, retry_id) DO UPDATE SET
    status = excluded.status, exit_code = excluded.exit_code, ip = excluded.ip,
    start_time = excluded.start_time, end_time = excluded.end_time, reason = excluded.reason;
END;`;

const INITIAL_SCHEMA = `
CREATE TABLE runs (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  status      TEXT NOT NULL,
  spec        TEXT NOT NULL,
  runtime     TEXT NOT NULL,
  submit_time INTEGER NOT NULL,
  start_time  INTEGER,
  end_time    INTEGER,
  UNIQUE (name, seq)
);
CREATE INDEX runs_by_submit_time ON runs (submit_time DESC, seq DESC);

CREATE TABLE groups (
  run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  idx        INTEGER NOT NULL,
  name       TEXT NOT NULL,
  status     TEXT NOT NULL,
  start_time INTEGER,
  end_time   INTEGER,
  PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;

CREATE TABLE tasks (
  run_id     TEXT NOT NULL,
  group_idx  INTEGER NOT NULL,
  task_idx   INTEGER NOT NULL,
  name       TEXT NOT NULL,
  lead       INTEGER NOT NULL,
  status     TEXT NOT NULL,
  retry_id   INTEGER NOT NULL DEFAULT 0,
  exit_code  INTEGER,
  ip         TEXT,
  start_time INTEGER,
  end_time   INTEGER,
  PRIMARY KEY (run_id, group_idx, task_idx),
  FOREIGN KEY (run_id, group_idx) REFERENCES groups (run_id, idx) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE task_attempts (
  run_id     TEXT NOT NULL,
  group_idx  INTEGER NOT NULL,
  task_idx   INTEGER NOT NULL,
  retry_id   INTEGER NOT NULL,
  status     TEXT NOT NULL,
  exit_code  INTEGER,
  ip         TEXT,
  start_time INTEGER,
  end_time   INTEGER,
  -- relative to TROUPE_HOME, so a moved home keeps its logs
  log_path   TEXT NOT NULL,
  PRIMARY KEY (run_id, group_idx, task_idx, retry_id),
  FOREIGN KEY (run_id, group_idx, task_idx) REFERENCES tasks (run_id, group_idx, task_idx) ON DELETE CASCADE
) WITHOUT ROWID;

${V1_ATTEMPT_TRIGGERS}

CREATE TABLE transitions (
  id          INTEGER PRIMARY KEY,
  run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  subject     TEXT NOT NULL CHECK (subject IN ('run', 'group', 'task')),
  group_idx   INTEGER,
  task_idx    INTEGER,
  retry_id    INTEGER,
  from_status TEXT,
  to_status   TEXT NOT NULL,
  reason      TEXT NOT NULL,
  time        INTEGER NOT NULL
);
CREATE INDEX transitions_by_run ON transitions (run_id, time, id);
`;

/**
 * Migration 9. Before it, a restart said where a group or task it took over had run only in the reason it
 * recorded: "completed in run <id>: its outputs are reused" (the task's last reason; the group's transition to
 * COMPLETED). Those runs are read once here, by one pass over the tasks and one over the transitions.
 */
const REUSED_REASON = `'completed in run %: its outputs are reused'`;
const REUSED_RUN = `substr(reason, ${"completed in run ".length + 1}, length(reason) - ${"completed in run : its outputs are reused".length})`;
const REUSED_FROM = `
ALTER TABLE groups ADD COLUMN reused_from TEXT;
ALTER TABLE tasks ADD COLUMN reused_from TEXT;
UPDATE tasks SET reused_from = ${REUSED_RUN}
  WHERE reason LIKE ${REUSED_REASON} AND instr(${REUSED_RUN}, ' ') = 0;
UPDATE groups SET reused_from = taken.run
  FROM (SELECT run_id, group_idx, ${REUSED_RUN} AS run FROM transitions
        WHERE subject = 'group' AND to_status = 'COMPLETED' AND reason LIKE ${REUSED_REASON} AND instr(${REUSED_RUN}, ' ') = 0) AS taken
  WHERE groups.run_id = taken.run_id AND groups.idx = taken.group_idx;`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, description: "runs, groups, tasks, task attempts, transitions", up: (db) => db.exec(INITIAL_SCHEMA) },
  {
    version: 2,
    description: "the process that owns a run, so a run whose process died can be settled",
    up: (db) => db.exec("ALTER TABLE runs ADD COLUMN owner TEXT"),
  },
  {
    version: 3,
    description: "who submitted a run and to which pool (the server); API tokens, stored hashed",
    up: (db) =>
      db.exec(`
ALTER TABLE runs ADD COLUMN user TEXT;
ALTER TABLE runs ADD COLUMN pool TEXT;
CREATE INDEX runs_by_user ON runs (user, submit_time);
CREATE TABLE tokens (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  hash       TEXT NOT NULL UNIQUE,
  admin      INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);`),
  },
  {
    version: 4,
    description: "the template variables a run was submitted with (a restart renders the spec again with them)",
    up: (db) => db.exec("ALTER TABLE runs ADD COLUMN variables TEXT"),
  },
  {
    version: 5,
    description: "a server run's priority and labels (labels as a JSON object); earlier server runs get NORMAL and none",
    up: (db) =>
      db.exec(`
ALTER TABLE runs ADD COLUMN priority TEXT;
ALTER TABLE runs ADD COLUMN labels TEXT;
UPDATE runs SET priority = 'NORMAL', labels = '{}' WHERE user IS NOT NULL;`),
  },
  {
    version: 6,
    description: "which GPUs each member of a group has while it runs (JSON, per task), for a resumed run to keep them",
    up: (db) => db.exec("ALTER TABLE groups ADD COLUMN gpus TEXT"),
  },
  {
    version: 7,
    description:
      "why each task attempt is where it is (the reason of its last change); a cancel asked of a run by another process; the directory a local run's spec was read from",
    up: (db) =>
      db.exec(`
DROP TRIGGER tasks_insert_attempt;
DROP TRIGGER tasks_update_attempt;
ALTER TABLE tasks ADD COLUMN reason TEXT;
ALTER TABLE task_attempts ADD COLUMN reason TEXT;
ALTER TABLE runs ADD COLUMN cancel_request TEXT;
ALTER TABLE runs ADD COLUMN base_dir TEXT;
-- Earlier attempts get the reason of their last transition: one pass over the transitions, the last one kept.
CREATE TEMP TABLE last_reason (run_id TEXT, group_idx INTEGER, task_idx INTEGER, retry_id INTEGER, reason TEXT,
  PRIMARY KEY (run_id, group_idx, task_idx, retry_id));
INSERT OR REPLACE INTO last_reason
  SELECT run_id, group_idx, task_idx, retry_id, reason FROM transitions WHERE subject = 'task' ORDER BY time, id;
UPDATE tasks SET reason = (SELECT l.reason FROM last_reason l WHERE l.run_id = tasks.run_id AND l.group_idx = tasks.group_idx
  AND l.task_idx = tasks.task_idx AND l.retry_id = tasks.retry_id);
UPDATE task_attempts SET reason = (SELECT l.reason FROM last_reason l WHERE l.run_id = task_attempts.run_id
  AND l.group_idx = task_attempts.group_idx AND l.task_idx = task_attempts.task_idx AND l.retry_id = task_attempts.retry_id);
DROP TABLE last_reason;
${ATTEMPT_TRIGGERS}`),
  },
  {
    version: 8,
    description: "a server run's tags (JSON array, changed after submission) and its spec after templating",
    up: (db) =>
      db.exec(`
ALTER TABLE runs ADD COLUMN tags TEXT;
ALTER TABLE runs ADD COLUMN rendered_spec TEXT;`),
  },
  {
    version: 9,
    description:
      "the durable id of each group's handle in its pool (a container set, a Slurm job), by which a restarted troupe finds it again",
    up: (db) => db.exec("ALTER TABLE groups ADD COLUMN handle TEXT"),
  },
  {
    version: 10,
    description:
      "the run a restart took each group and task over from (its outputs and logs are there), as data; earlier runs' read from their reasons once",
    up: (db) => db.exec(REUSED_FROM),
  },
  {
    version: 11,
    description:
      "credentials (OSMO's REGISTRY, DATA, GENERIC), per owner: their payloads sealed with a key kept outside the database (AES-256-GCM)",
    up: (db) =>
      db.exec(`
CREATE TABLE credentials (
  owner      TEXT NOT NULL DEFAULT '',
  name       TEXT NOT NULL,
  type       TEXT NOT NULL,
  keys       TEXT NOT NULL,
  profile    TEXT,
  key_id     TEXT NOT NULL,
  payload    BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (owner, name)
);`),
  },
];

export function schemaVersion(db: Database.Database): number {
  return db.pragma("user_version", { simple: true }) as number;
}

/**
 * Brings `db` up to the last of `migrations` and returns how many were applied.
 * A database newer than the code is refused rather than read with a schema it may not match.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${i} has version ${m.version}, expected ${i + 1}`);
  });
  const latest = migrations.length;
  const current = schemaVersion(db);
  if (current > latest) {
    throw new TroupeError(
      "E_STORE_TOO_NEW",
      `the database ${db.name} has schema version ${current}, newer than this troupe knows (${latest})`,
      "system",
      "upgrade troupe, or set TROUPE_HOME to another directory",
    );
  }
  let applied = 0;
  for (const migration of migrations.slice(current)) {
    const step = db.transaction(() => {
      // Another process may have applied it while this one waited for the lock.
      if (schemaVersion(db) >= migration.version) return;
      migration.up(db);
      db.pragma(`user_version = ${migration.version}`);
      applied += 1;
    });
    step.immediate();
  }
  return applied;
}
