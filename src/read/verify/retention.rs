//! What retention dropped, as far as the database can show it
//! ([`Dropped`]): each row of `ringtrail.retention_log` is evidence to
//! check, not an instruction to skip.
//!
//! An entry is *proven* when the database looks as a real retention would
//! have left it:
//!
//! - its range `[range_from, range_to)` ended by the snapshot's `now()`
//!   (retention drops only the past);
//! - the partition it names is no longer attached to `ringtrail.logs`;
//! - no attached partition but DEFAULT overlaps its range.
//!
//! Any other entry is a `retention_unproven` finding, and its range is not
//! taken as dropped. A proven range never makes `verify` skip a batch: a
//! batch's rows are always read, and only a batch that comes up short,
//! whose window overlaps a proven range and none of whose rows found lies
//! in one, counts as rows lost to retention (partly, when the batch
//! straddled a dropped partition's bound). A row found inside a dropped
//! range (written there after the drop) is checked like any other.

use tokio_postgres::Transaction;

use crate::chain::finding::{Finding, FindingCode};
use crate::chain::link::ChainId;
use crate::encode::copy::{WireMicros, PG_EPOCH_UNIX_MICROS};
use crate::schema::partitions;
use crate::time::rfc3339_micros;

/// The ranges proven dropped by retention, in microseconds since
/// 2000-01-01 UTC (the ledger's), half open `[from, to)`.
#[derive(Debug, Default)]
pub(super) struct Dropped {
    ranges: Vec<(i64, i64)>,
}

impl Dropped {
    /// Reads `ringtrail.retention_log` and the partitions attached now,
    /// returning the proven ranges and a finding for each entry no real
    /// retention can have written.
    pub(super) async fn read(tx: &Transaction<'_>) -> crate::Result<(Dropped, Vec<Finding>)> {
        let now: WireMicros = tx.query_one("SELECT now()", &[]).await?.try_get(0)?;
        let attached = partitions::list(tx).await?;
        let mut dropped = Dropped::default();
        let mut findings = Vec::new();
        for row in tx
            .query(
                "SELECT partition, range_from, range_to, dropped_by FROM ringtrail.retention_log \
                 ORDER BY range_to, partition",
                &[],
            )
            .await?
        {
            let name: &str = row.try_get(0)?;
            let from = row
                .try_get::<_, Option<WireMicros>>(1)?
                .map_or(i64::MIN, |t| t.0);
            let to = row.try_get::<_, WireMicros>(2)?.0;
            let by: &str = row.try_get(3)?;
            let why = if to > now.0 {
                Some("its range ends in the future, and retention drops only the past".to_owned())
            } else if from >= to {
                Some("its range is empty".to_owned())
            } else if attached.iter().any(|p| p.name == name) {
                Some(format!("{name} is still attached to ringtrail.logs"))
            } else {
                attached
                    .iter()
                    .filter(|p| !p.is_default)
                    .find(|p| {
                        overlaps(
                            pg_micros(p.from_micros, i64::MIN),
                            pg_micros(p.to_micros, i64::MAX),
                            from,
                            to,
                        )
                    })
                    .map(|p| format!("partition {} still holds part of its range", p.name))
            };
            match why {
                None => dropped.ranges.push((from, to)),
                Some(why) => findings.push(Finding {
                    code: FindingCode::RetentionUnproven,
                    chain: ChainId([0; 16]),
                    seq: None,
                    batch_id: None,
                    detail: format!(
                        "ringtrail.retention_log says {by} dropped {name} ({} to {}), \
                         but no retention did: {why}",
                        show(from),
                        show(to)
                    ),
                }),
            }
        }
        Ok((dropped, findings))
    }

    /// Whether `[first, last]` (a batch's window) overlaps a dropped range.
    pub(super) fn overlaps(&self, first: i64, last: i64) -> bool {
        self.ranges
            .iter()
            .any(|&(from, to)| overlaps(from, to, first, last.saturating_add(1)))
    }

    /// Whether `ts` lies in a dropped range.
    pub(super) fn holds(&self, ts: i64) -> bool {
        self.ranges.iter().any(|&(from, to)| from <= ts && ts < to)
    }
}

/// Whether `[a_from, a_to)` and `[b_from, b_to)` share an instant.
fn overlaps(a_from: i64, a_to: i64, b_from: i64, b_to: i64) -> bool {
    a_from < b_to && b_from < a_to
}

/// A partition bound (Unix microseconds, `None` unbounded) in the
/// ledger's microseconds.
fn pg_micros(unix: Option<i64>, unbounded: i64) -> i64 {
    unix.map_or(unbounded, |u| u.saturating_sub(PG_EPOCH_UNIX_MICROS))
}

/// A bound for a finding's detail.
fn show(pg: i64) -> String {
    match pg {
        i64::MIN => "-infinity".to_owned(),
        i64::MAX => "infinity".to_owned(),
        t => rfc3339_micros(t.saturating_add(PG_EPOCH_UNIX_MICROS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_half_open() {
        let d = Dropped {
            ranges: vec![(100, 200)],
        };
        assert!(d.holds(100) && d.holds(199) && !d.holds(200) && !d.holds(99));
        assert!(d.overlaps(199, 300) && d.overlaps(0, 100) && !d.overlaps(200, 300));
        assert!(!d.overlaps(0, 99));
        assert_eq!(show(i64::MAX), "infinity");
        assert_eq!(show(0), "2000-01-01T00:00:00.000000Z");
    }
}
