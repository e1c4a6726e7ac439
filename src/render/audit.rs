//! What the renderers read from an audit point: which [`Point`] a row is,
//! and its [`Verdict`] (the success or failure that ECS `event.outcome`
//! and OCSF `status_id` carry), from its `outcome`, `decision` or `status`
//! field, named by the [contract](crate::audit::contract).

use crate::audit::contract::{field, Decision, Outcome, Status};
use crate::audit::Point;
use crate::row::{Row, Value};

/// The audit point `row` is, from its `kind` (`None` for a plain row and
/// for a `kind` no point has).
pub(super) fn point(row: &Row<'_>) -> Option<Point> {
    row.kind.and_then(Point::from_kind)
}

/// How a point's action ended, with the raw word that said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict<'a> {
    /// `outcome=success`, `decision=allow|approved`, `status=ok`.
    Success(&'a str),
    /// `outcome=failure|abandoned`, `decision=deny`, `status=error`.
    Failure(&'a str),
    /// Another word (`decision=needs_approval`, an unknown status).
    Other(&'a str),
    /// No `outcome`, `decision` or `status` string.
    Unknown,
}

impl<'a> Verdict<'a> {
    /// The raw word, when there was one.
    pub(super) fn word(self) -> Option<&'a str> {
        match self {
            Verdict::Success(w) | Verdict::Failure(w) | Verdict::Other(w) => Some(w),
            Verdict::Unknown => None,
        }
    }
}

/// The verdict of `row`: its first string `outcome` field (a result), else
/// `decision` (a permission), else `status` (a tool); read on any row.
pub(super) fn verdict<'a>(row: &Row<'a>) -> Verdict<'a> {
    let first = |name: &str| {
        row.fields.iter().find_map(|f| match f.value {
            Value::Str(s) if f.name == name => Some(s),
            _ => None,
        })
    };
    if let Some(w) = first(field::OUTCOME) {
        return match Outcome::from_name(w) {
            Some(Outcome::Success) => Verdict::Success(w),
            Some(Outcome::Failure | Outcome::Abandoned) => Verdict::Failure(w),
            None => Verdict::Other(w),
        };
    }
    if let Some(w) = first(field::DECISION) {
        return match Decision::from_name(w) {
            Some(Decision::Allow | Decision::Approved) => Verdict::Success(w),
            Some(Decision::Deny) => Verdict::Failure(w),
            Some(Decision::NeedsApproval) | None => Verdict::Other(w),
        };
    }
    if let Some(w) = first(field::STATUS) {
        return match Status::from_name(w) {
            Some(Status::Ok) => Verdict::Success(w),
            Some(Status::Error) => Verdict::Failure(w),
            None => Verdict::Other(w),
        };
    }
    Verdict::Unknown
}

/// The permission point's decision, when it is one of [`Decision`]'s.
pub(super) fn decision(row: &Row<'_>) -> Option<Decision> {
    row.fields.iter().find_map(|f| match f.value {
        Value::Str(s) if f.name == field::DECISION => Decision::from_name(s),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Field;

    fn verdict_of(name: &'static str, word: &'static str) -> Verdict<'static> {
        let fields = Box::leak(Box::new([Field {
            name,
            value: Value::Str(word),
        }]));
        verdict(&Row {
            fields: &fields[..],
            ..Row::default()
        })
    }

    #[test]
    fn words_map_to_verdicts() {
        assert_eq!(
            verdict_of("outcome", "success"),
            Verdict::Success("success")
        );
        assert_eq!(
            verdict_of("outcome", "abandoned"),
            Verdict::Failure("abandoned")
        );
        assert_eq!(
            verdict_of("decision", "approved"),
            Verdict::Success("approved")
        );
        assert_eq!(verdict_of("decision", "deny"), Verdict::Failure("deny"));
        assert_eq!(
            verdict_of("decision", "needs_approval"),
            Verdict::Other("needs_approval")
        );
        assert_eq!(verdict_of("status", "ok"), Verdict::Success("ok"));
        assert_eq!(verdict_of("status", "error"), Verdict::Failure("error"));
        assert_eq!(verdict_of("status", "teapot"), Verdict::Other("teapot"));
        assert_eq!(verdict_of("other", "ok"), Verdict::Unknown);
        assert_eq!(Verdict::Unknown.word(), None);
    }

    #[test]
    fn outcome_wins_and_points_come_from_kind() {
        let fields = [
            Field {
                name: "status",
                value: Value::Str("error"),
            },
            Field {
                name: "outcome",
                value: Value::Str("success"),
            },
        ];
        let row = Row {
            fields: &fields,
            kind: Some(5),
            ..Row::default()
        };
        assert_eq!(verdict(&row), Verdict::Success("success"));
        assert_eq!(point(&row), Some(Point::Result));
        assert_eq!(
            point(&Row {
                kind: Some(9),
                ..Row::default()
            }),
            None
        );
        assert_eq!(point(&Row::default()), None);
    }
}
