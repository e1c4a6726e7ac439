-- A dead letter names the batch it was sealed in as well as the one it
-- was refused from: bisection refuses rows from pieces, under ids of
-- their own, and a piece that never commits leaves no ledger row to
-- name it. `ringtrail verify` counts a sealed batch's dead letters by
-- this column, whatever piece they came from. NULL before 0008, and for
-- batches sealed without the chain.
ALTER TABLE ringtrail.dead_letters ADD COLUMN sealed_id uuid;
CREATE INDEX dead_letters_sealed ON ringtrail.dead_letters (sealed_id)
    WHERE sealed_id IS NOT NULL;
