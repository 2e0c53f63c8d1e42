-- minnow's farm schema, version 1: the tuning records (as in the SQLite file), the runs that
-- logged them, and the measurement queue with its workers.

CREATE TABLE records (
    id BIGSERIAL PRIMARY KEY,
    workload_key TEXT NOT NULL,
    workload TEXT NOT NULL,
    target TEXT NOT NULL,
    runner TEXT NOT NULL,
    schedule TEXT NOT NULL,
    genome TEXT,
    status TEXT NOT NULL,
    figure DOUBLE PRECISION,
    unit TEXT NOT NULL,
    message TEXT,
    origin TEXT NOT NULL,
    measured_at BIGINT NOT NULL,
    minnow_version TEXT NOT NULL
);
CREATE INDEX records_by_workload ON records (workload_key, target, runner);

CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    model TEXT NOT NULL,
    target TEXT NOT NULL,
    runner TEXT NOT NULL,
    strategy TEXT NOT NULL,
    seed TEXT NOT NULL,
    trials BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    minnow_version TEXT NOT NULL
);

CREATE TABLE run_tasks (
    run_id BIGINT NOT NULL REFERENCES runs (id),
    task BIGINT NOT NULL,
    workload_key TEXT NOT NULL,
    layer TEXT NOT NULL,
    op TEXT NOT NULL,
    occurrences BIGINT NOT NULL,
    PRIMARY KEY (run_id, task)
);

CREATE TABLE run_trials (
    run_id BIGINT NOT NULL REFERENCES runs (id),
    seq BIGINT NOT NULL,
    task BIGINT NOT NULL,
    record_id BIGINT NOT NULL REFERENCES records (id),
    PRIMARY KEY (run_id, seq)
);

-- One row per `minnow farm worker` process.
CREATE TABLE workers (
    id BIGSERIAL PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    target TEXT NOT NULL,
    runner TEXT NOT NULL,
    board TEXT NOT NULL,
    slots BIGINT NOT NULL,
    lease_seconds DOUBLE PRECISION NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    stopped_at TIMESTAMPTZ,
    jobs_done BIGINT NOT NULL DEFAULT 0,
    minnow_version TEXT NOT NULL
);

-- The measurement queue. A job is `queued`, `leased` by a worker until `lease_expires_at`
-- (renewed by its heartbeat; a lapsed lease may be taken again), or `done` with its result.
-- `avoid_board` lists boards that failed on it (the board, not the candidate); they do not
-- take it again before `retry_after`, so another board gets the first chance.
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    target TEXT NOT NULL,
    runner TEXT NOT NULL,
    spec BYTEA NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'leased', 'done')),
    attempts BIGINT NOT NULL DEFAULT 0,
    worker_id BIGINT REFERENCES workers (id),
    board TEXT,
    lease_expires_at TIMESTAMPTZ,
    avoid_board TEXT[] NOT NULL DEFAULT '{}',
    retry_after TIMESTAMPTZ,
    result BYTEA,
    notify TEXT NOT NULL,
    enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    leased_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE INDEX jobs_open ON jobs (target, runner, id) WHERE state <> 'done';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state = 'done';
