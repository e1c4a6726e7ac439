-- Delivery guarantees: the batch ledger and the dead-letter store.

-- One row per committed batch, inserted in the same transaction as the
-- batch's COPY. A retry whose first attempt had an unknown outcome (the
-- connection died after CopyDone) looks its batch up here first, so no
-- batch is ever loaded twice.
CREATE TABLE ringtrail.batches (
    batch_id     uuid        PRIMARY KEY,
    rows         integer     NOT NULL,
    bytes        bigint      NOT NULL,
    first_ts     timestamptz NOT NULL,
    last_ts      timestamptz NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);

-- Rows PostgreSQL refused (a data-class error, SQLSTATE 22* or 23*), moved
-- out of their batch so the rest of it could land. `tuple` is the row's raw
-- binary COPY tuple: field count, then length-prefixed fields.
CREATE TABLE ringtrail.dead_letters (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id  uuid        NOT NULL,
    line      integer,
    sqlstate  text        NOT NULL,
    message   text        NOT NULL,
    tuple     bytea       NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
