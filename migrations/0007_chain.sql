-- Tamper evidence (src/chain/, src/sink/chained.rs): rows know their batch,
-- the ledger is a hash chain, and signed checkpoints are kept.

-- Every row committed in a batch's transaction carries that batch's id.
-- The shipper sends it as a COPY column (a default evaluated per row cost
-- the server about 0.3 µs a row); the default below serves writers that
-- set `ringtrail.batch_id` instead. `current_setting` is STABLE, not
-- volatile, so COPY keeps its batched multi-insert. Rows from before, or
-- inserted by hand, read NULL. A new nullable column with a non-volatile
-- default rewrites nothing: existing rows read NULL (the default is
-- evaluated once for them, and the setting is unset here).
ALTER TABLE ringtrail.logs ADD COLUMN batch_id uuid;
ALTER TABLE ringtrail.logs ALTER COLUMN batch_id
    SET DEFAULT NULLIF(current_setting('ringtrail.batch_id', true), '')::uuid;

-- The chain, in each ledger row: the batch as sealed (its id and row
-- count, which a dead-lettered row or a bisection can split), the digest
-- of its rows, and the link: hash = SHA-256(prev_hash ‖ digest ‖ seq ‖
-- chain id, sealed id, sealed rows, first_ts, last_ts). The pieces of a
-- bisected batch each carry the sealed batch's entry. NULL before 0007.
ALTER TABLE ringtrail.batches
    ADD COLUMN chain_id    uuid,
    ADD COLUMN seq         bigint,
    ADD COLUMN sealed_id   uuid,
    ADD COLUMN sealed_rows integer,
    ADD COLUMN digest      bytea,
    ADD COLUMN prev_hash   bytea,
    ADD COLUMN hash        bytea;
CREATE INDEX batches_chain ON ringtrail.batches (chain_id, seq);

-- Signed checkpoints (C2SP checkpoint notes), one per (chain, seq), written
-- in the transaction of the batch they end at. Copies kept outside the
-- database (the checkpoint file, the JSON-lines stream) are what make a
-- rewrite of this table and the ledger detectable.
CREATE TABLE ringtrail.checkpoints (
    chain_id   uuid        NOT NULL,
    seq        bigint      NOT NULL,
    head       bytea       NOT NULL,
    note       text        NOT NULL,
    public_key text        NOT NULL,
    signed_at  timestamptz NOT NULL,
    PRIMARY KEY (chain_id, seq)
);

-- Retention drops partitions, not ledger rows; what it dropped is logged
-- with the chain position of the first batch kept on each chain
-- (`[{"chain_id", "seq", "hash"}]`), where a verification of the rest can
-- start.
ALTER TABLE ringtrail.retention_log ADD COLUMN kept_from jsonb;
