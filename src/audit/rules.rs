//! The completeness check: pure functions over one trace's rows, no I/O.
//!
//! Input: a trace's rows in timeline order (by `ts`, then `seq`, then
//! `id`: the thread's sequence number keeps one thread's points in the
//! order it emitted them within a microsecond), as
//! [`PointRow`]s; plain rows (`point: None`) may be among them and are
//! ignored. Output: the [`Finding`]s; a complete trace has none.
//!
//! ```
//! use std::time::Duration;
//! use ringtrail::audit::rules::{check, PointRow};
//! use ringtrail::audit::{Decision, Point};
//!
//! let at = |ts_micros, point| PointRow { ts_micros, point: Some(point), ..PointRow::default() };
//! let rows = [
//!     at(1, Point::Identity),
//!     at(2, Point::Agent),
//!     PointRow { decision: Some(Decision::Deny), tool_name: Some("rm"), ..at(3, Point::Permission) },
//!     PointRow { tool_name: Some("rm"), ..at(4, Point::Tool) },
//!     at(5, Point::Result),
//! ];
//! let findings = check(&rows, 10, Duration::from_secs(300));
//! assert_eq!(findings.len(), 1);
//! assert_eq!(findings[0].code.as_str(), "executed_after_deny");
//! assert_eq!(findings[0].row, Some(3));
//! ```
//!
//! # Rules
//!
//! A permission *matches* a tool point when:
//! 1. both carry `gen_ai.tool.call.id`: the call ids are equal;
//! 2. otherwise: the permission's `gen_ai.tool.name` equals the tool's;
//! 3. a permission with neither field is a blanket decision: it matches
//!    every tool point after it.
//!
//! Only permission points with a valid `decision` count: one without
//! authorizes nothing.
//!
//! | code | when |
//! |---|---|
//! | `missing_identity` | the trace has no identity point |
//! | `missing_agent` | the trace has no agent point |
//! | `missing_permission` | a tool point has no matching permission before it |
//! | `executed_after_deny` | a tool point's latest matching decision before it is `deny`, or `needs_approval` with no `approved` after it (and before the tool) |
//! | `missing_result` | no result point, and the last point is older than the grace period |
//! | `abandoned` | the result's outcome is `abandoned` |
//! | `out_of_order` | an identity point after a point of another kind, or any point after the result |
//! | `trace_too_large` | the trace has more rows than the reader's limit ([`Checker::with_limit`]); the rows past it were not checked |
//!
//! "The result" is the first result point; a second one is a point after
//! it. Findings come in this order: `missing_identity`, `missing_agent`,
//! then the per-point findings by row, then `missing_result`. A trace past
//! the limit has only the per-point findings of the rows checked, then
//! `trace_too_large`.
//!
//! # Cost
//!
//! Linear in the rows: every rule looks only at the rows before the one
//! at hand, through an index of the latest decisions by call id, by tool
//! name and blanket ([`Checker`]), so a trace with a million tool points
//! costs a million lookups, not a trillion comparisons.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::contract::{field, Decision, Outcome, Point, POINT_FIELD};

/// One row of a trace, reduced to what the rules read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PointRow<'a> {
    /// Event time, microseconds since the Unix epoch.
    pub ts_micros: i64,
    /// The row's sequence number on the thread that emitted it (the `seq`
    /// column, 0 when it has none): within one microsecond it orders one
    /// thread's points as the thread emitted them. Read only for the
    /// order ([`PointRow::timeline_key`]).
    pub seq: i64,
    /// The row id (UUID text), copied into findings as `row_id`; may be
    /// empty.
    pub id: &'a str,
    /// Which point the row is; `None` for a plain log row.
    pub point: Option<Point>,
    /// A permission's `decision`.
    pub decision: Option<Decision>,
    /// `gen_ai.tool.name` (permission and tool points).
    pub tool_name: Option<&'a str>,
    /// `gen_ai.tool.call.id` (permission and tool points).
    pub call_id: Option<&'a str>,
    /// A result's `outcome`.
    pub outcome: Option<Outcome>,
}

impl<'a> PointRow<'a> {
    /// A row from its `kind` column and a lookup of its string fields
    /// (e.g. into the `fields` jsonb). The point is `kind`'s, or else the
    /// `audit.point` field's; unknown names read as `None`. `seq` is 0
    /// (set it with struct update syntax).
    ///
    /// ```
    /// use ringtrail::audit::rules::PointRow;
    /// use ringtrail::audit::{Decision, Point};
    ///
    /// let fields = serde_json::json!({"decision": "deny", "gen_ai.tool.name": "rm"});
    /// let row = PointRow::from_fields(7, "0190…", Some(3), |name| fields.get(name)?.as_str());
    /// assert_eq!(row.point, Some(Point::Permission));
    /// assert_eq!(row.decision, Some(Decision::Deny));
    /// assert_eq!(row.tool_name, Some("rm"));
    /// ```
    pub fn from_fields(
        ts_micros: i64,
        id: &'a str,
        kind: Option<i16>,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> PointRow<'a> {
        let point = kind
            .and_then(Point::from_kind)
            .or_else(|| get(POINT_FIELD).and_then(Point::from_name));
        PointRow {
            ts_micros,
            id,
            point,
            decision: get(field::DECISION).and_then(Decision::from_name),
            tool_name: get(field::TOOL_NAME),
            call_id: get(field::TOOL_CALL_ID),
            outcome: get(field::OUTCOME).and_then(Outcome::from_name),
            seq: 0,
        }
    }

    /// What timeline order sorts by: `ts`, then `seq`, then `id` (UUID
    /// text sorts as PostgreSQL's `uuid` does), as `ORDER BY ts, seq, id`.
    ///
    /// ```
    /// use ringtrail::audit::rules::PointRow;
    /// // One thread's two points in one microsecond, the later one given
    /// // the smaller id by a writer that drained it first.
    /// let first = PointRow { ts_micros: 7, seq: 41, id: "b", ..PointRow::default() };
    /// let second = PointRow { ts_micros: 7, seq: 42, id: "a", ..PointRow::default() };
    /// assert!(first.timeline_key() < second.timeline_key());
    /// ```
    pub fn timeline_key(&self) -> (i64, i64, &'a str) {
        (self.ts_micros, self.seq, self.id)
    }

    fn is(&self, point: Point) -> bool {
        self.point == Some(point)
    }

    /// A permission point with a valid decision.
    #[cfg(test)]
    fn decides(&self) -> Option<Decision> {
        if self.is(Point::Permission) {
            self.decision
        } else {
            None
        }
    }
}

/// Whether `permission` covers `target` (a tool point, or another
/// permission point standing for the action it names): rules 1 to 3 as
/// written, which [`Decisions`] indexes. The tests check the index
/// against it.
#[cfg(test)]
fn covers(permission: &PointRow<'_>, target: &PointRow<'_>) -> bool {
    match (permission.call_id, target.call_id) {
        (Some(a), Some(b)) => a == b,
        _ => match (permission.tool_name, permission.call_id) {
            (None, None) => true,
            (Some(name), _) => target.tool_name == Some(name),
            (None, Some(_)) => false,
        },
    }
}

/// The code of a [`Finding`]. Tools and dashboards match on
/// [`as_str`](FindingCode::as_str).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FindingCode {
    /// The trace has no identity point.
    MissingIdentity,
    /// The trace has no agent point.
    MissingAgent,
    /// A tool point has no matching permission point before it.
    MissingPermission,
    /// A tool point ran after a `deny`, or after a `needs_approval` that
    /// was never `approved`.
    ExecutedAfterDeny,
    /// No result point, and the last point is older than the grace period.
    MissingResult,
    /// The result's outcome is `abandoned`.
    Abandoned,
    /// An identity point after another point, or a point after the result.
    OutOfOrder,
    /// The trace has more rows than the reader's limit: the rows past it
    /// were not checked, so whether the trace is complete is unknown (see
    /// [`Checker::with_limit`]).
    TraceTooLarge,
}

impl FindingCode {
    /// Every code.
    pub const ALL: [FindingCode; 8] = [
        FindingCode::MissingIdentity,
        FindingCode::MissingAgent,
        FindingCode::MissingPermission,
        FindingCode::ExecutedAfterDeny,
        FindingCode::MissingResult,
        FindingCode::Abandoned,
        FindingCode::OutOfOrder,
        FindingCode::TraceTooLarge,
    ];

    /// The exact code, e.g. `missing_permission`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FindingCode::MissingIdentity => "missing_identity",
            FindingCode::MissingAgent => "missing_agent",
            FindingCode::MissingPermission => "missing_permission",
            FindingCode::ExecutedAfterDeny => "executed_after_deny",
            FindingCode::MissingResult => "missing_result",
            FindingCode::Abandoned => "abandoned",
            FindingCode::OutOfOrder => "out_of_order",
            FindingCode::TraceTooLarge => "trace_too_large",
        }
    }

    /// The code named `name`, if any.
    pub fn from_name(name: &str) -> Option<FindingCode> {
        FindingCode::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One way a trace is incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong.
    pub code: FindingCode,
    /// Index, in the rows given to [`check`], of the offending point;
    /// `None` for a finding about the whole trace.
    pub row: Option<usize>,
    /// That row's id, when it has one.
    pub row_id: Option<String>,
    /// The tool point's `gen_ai.tool.name`, for findings about a tool.
    pub tool: Option<String>,
    /// The tool point's `gen_ai.tool.call.id`, for findings about a tool.
    pub call_id: Option<String>,
    /// For `executed_after_deny`: the decision that should have stopped
    /// the tool (`deny` or `needs_approval`).
    pub decision: Option<Decision>,
    /// One line for people.
    pub detail: String,
}

impl Finding {
    fn trace(code: FindingCode, detail: String) -> Finding {
        Finding {
            code,
            row: None,
            row_id: None,
            tool: None,
            call_id: None,
            decision: None,
            detail,
        }
    }

    fn at(code: FindingCode, index: usize, row: &PointRow<'_>, detail: String) -> Finding {
        let about_tool = row.is(Point::Tool);
        Finding {
            code,
            row: Some(index),
            row_id: (!row.id.is_empty()).then(|| row.id.to_owned()),
            tool: row.tool_name.filter(|_| about_tool).map(str::to_owned),
            call_id: row.call_id.filter(|_| about_tool).map(str::to_owned),
            decision: None,
            detail,
        }
    }

    /// The finding as JSON: `{"code": "...", "detail": "..."}`, plus
    /// `row`, `row_id`, `tool`, `call_id` and `decision` where they apply.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("code".into(), self.code.as_str().into());
        if let Some(row) = self.row {
            m.insert("row".into(), row.into());
        }
        if let Some(id) = &self.row_id {
            m.insert("row_id".into(), id.as_str().into());
        }
        if let Some(tool) = &self.tool {
            m.insert("tool".into(), tool.as_str().into());
        }
        if let Some(call_id) = &self.call_id {
            m.insert("call_id".into(), call_id.as_str().into());
        }
        if let Some(decision) = self.decision {
            m.insert("decision".into(), decision.as_str().into());
        }
        m.insert("detail".into(), self.detail.as_str().into());
        serde_json::Value::Object(m)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

/// "tool `search` (call `c1`)", for details.
fn describe_tool(row: &PointRow<'_>) -> String {
    match (row.tool_name, row.call_id) {
        (Some(name), Some(call)) => format!("tool `{name}` (call `{call}`)"),
        (Some(name), None) => format!("tool `{name}`"),
        (None, Some(call)) => format!("tool call `{call}`"),
        (None, None) => "a tool point with no tool name".to_owned(),
    }
}

/// Checks one trace: `rows` in timeline order (by `ts`, then `seq`, then
/// `id`), plain rows included or not. `now_micros` and `grace` decide
/// whether a trace without a result is still in flight (no
/// `missing_result` yet) or stale. Pure: the same rows always give the
/// same findings. Linear in the rows (a [`Checker`] over them).
pub fn check(rows: &[PointRow<'_>], now_micros: i64, grace: Duration) -> Vec<Finding> {
    let mut checker = Checker::new();
    for row in rows {
        checker.push(row);
    }
    checker.finish(now_micros, grace)
}

/// [`check`], one row at a time: for rows that arrive one by one (a
/// streamed query), none of which it keeps.
///
/// Every rule looks only backwards (at the rows before the one at hand)
/// or at the whole trace's summary, so each row is checked as it comes,
/// in constant time: permissions are indexed by call id, by tool name and
/// as blanket decisions, and a tool point looks up the latest one that
/// covers it instead of scanning back. Memory grows with the distinct
/// tool names and call ids among the permissions and with the findings,
/// never with the rows themselves.
///
/// With a limit ([`Checker::with_limit`]), rows past it are counted and
/// not checked, and the trace gets [`FindingCode::TraceTooLarge`]: its
/// per-point findings up to the limit stand (each looks only backwards),
/// the trace-wide ones (`missing_identity`, `missing_agent`,
/// `missing_result`) are not judged.
///
/// ```
/// use std::time::Duration;
/// use ringtrail::audit::rules::{Checker, PointRow};
/// use ringtrail::audit::Point;
///
/// let mut checker = Checker::with_limit(2);
/// for point in [Point::Identity, Point::Agent, Point::Result] {
///     checker.push(&PointRow { point: Some(point), ..PointRow::default() });
/// }
/// assert_eq!(checker.rows(), 3);
/// let findings = checker.finish(0, Duration::from_secs(300));
/// assert_eq!(findings.len(), 1);
/// assert_eq!(findings[0].code.as_str(), "trace_too_large");
/// ```
#[derive(Debug, Default)]
pub struct Checker {
    /// Rows pushed so far, checked or not: the next row's index.
    rows: usize,
    /// Rows past this many are not checked; `usize::MAX` for no limit.
    limit: Option<usize>,
    /// Time of the last point checked, and of the last row checked.
    last_point_ts: Option<i64>,
    last_row_ts: Option<i64>,
    identity: bool,
    agent: bool,
    /// Whether a point other than an identity was checked.
    non_identity: bool,
    /// The index of the first result point.
    result: Option<usize>,
    /// The latest decision of every kind, indexed.
    decisions: Decisions,
    /// The latest `approved` decisions, indexed the same way.
    approvals: Decisions,
    /// Findings about single points, in row order.
    findings: Vec<Finding>,
}

impl Checker {
    /// A checker with no limit on the rows it checks.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// A checker that checks the first `max_rows` rows pushed and counts
    /// the rest (see [`FindingCode::TraceTooLarge`]).
    pub fn with_limit(max_rows: usize) -> Checker {
        Checker {
            limit: Some(max_rows),
            ..Checker::default()
        }
    }

    /// Rows pushed so far, checked or not.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether rows past the limit were pushed (and not checked).
    pub fn too_large(&self) -> bool {
        self.limit.is_some_and(|limit| self.rows > limit)
    }

    /// Checks the next row of the trace, in timeline order. Returns
    /// `false` when the row is past the limit and was only counted.
    pub fn push(&mut self, row: &PointRow<'_>) -> bool {
        let i = self.rows;
        self.rows += 1;
        if self.too_large() {
            return false;
        }
        self.last_row_ts = Some(row.ts_micros);
        let Some(point) = row.point else {
            return true;
        };
        self.last_point_ts = Some(row.ts_micros);

        if point == Point::Identity && self.non_identity {
            self.findings.push(Finding::at(
                FindingCode::OutOfOrder,
                i,
                row,
                "an identity point after another point of the trace".to_owned(),
            ));
        } else if let Some(r) = self.result {
            self.findings.push(Finding::at(
                FindingCode::OutOfOrder,
                i,
                row,
                format!("a {point} point after the result (row {r})"),
            ));
        }
        match point {
            Point::Identity => self.identity = true,
            Point::Agent => self.agent = true,
            Point::Permission => {
                if let Some(decision) = row.decision {
                    let latest = Latest::of(i, decision, row);
                    if decision == Decision::Approved {
                        self.approvals.record(&latest);
                    }
                    self.decisions.record(&latest);
                }
            }
            Point::Tool => self.check_tool(i, row),
            Point::Result => {
                if self.result.is_none() {
                    self.result = Some(i);
                    if row.outcome == Some(Outcome::Abandoned) {
                        self.findings.push(Finding::at(
                            FindingCode::Abandoned,
                            i,
                            row,
                            "the request ended without a result: its trace was dropped".to_owned(),
                        ));
                    }
                }
            }
        }
        self.non_identity |= point != Point::Identity;
        true
    }

    /// The permission findings of the tool point `tool`, row `t`.
    fn check_tool(&mut self, t: usize, tool: &PointRow<'_>) {
        let Some(latest) = self.decisions.covering(tool.call_id, tool.tool_name) else {
            self.findings.push(Finding::at(
                FindingCode::MissingPermission,
                t,
                tool,
                format!(
                    "{} ran with no matching permission before it",
                    describe_tool(tool)
                ),
            ));
            return;
        };
        let n = latest.index;
        let why = match latest.decision {
            Decision::Allow | Decision::Approved => return,
            Decision::Deny => format!("after a deny (row {n})"),
            Decision::NeedsApproval => {
                // An approval after the request, before the tool, of the
                // request or of the tool itself.
                let after = |a: Option<&Latest>| a.is_some_and(|a| a.index > n);
                let asked = latest;
                if after(
                    self.approvals
                        .covering(asked.call_id.as_deref(), asked.tool_name.as_deref()),
                ) || after(self.approvals.covering(tool.call_id, tool.tool_name))
                {
                    return;
                }
                format!("while a needs_approval (row {n}) had no approval")
            }
        };
        let decision = latest.decision;
        let mut finding = Finding::at(
            FindingCode::ExecutedAfterDeny,
            t,
            tool,
            format!("{} ran {why}", describe_tool(tool)),
        );
        finding.decision = Some(decision);
        self.findings.push(finding);
    }

    /// The trace's findings: `missing_identity` and `missing_agent` (whole
    /// trace), the findings about single points in row order, then
    /// `missing_result`; for a trace past the limit, the findings about
    /// the points checked, then `trace_too_large`.
    pub fn finish(self, now_micros: i64, grace: Duration) -> Vec<Finding> {
        if let Some(limit) = self.limit.filter(|_| self.too_large()) {
            let mut findings = self.findings;
            findings.push(Finding::trace(
                FindingCode::TraceTooLarge,
                format!(
                    "the trace has {} rows, more than the {limit} checked: \
                     its completeness is unknown",
                    self.rows
                ),
            ));
            return findings;
        }
        let mut findings = Vec::with_capacity(self.findings.len() + 3);
        if !self.identity {
            findings.push(Finding::trace(
                FindingCode::MissingIdentity,
                "the trace has no identity point".to_owned(),
            ));
        }
        if !self.agent {
            findings.push(Finding::trace(
                FindingCode::MissingAgent,
                "the trace has no agent point".to_owned(),
            ));
        }
        findings.extend(self.findings);
        if self.result.is_none() {
            let last_ts = self.last_point_ts.or(self.last_row_ts);
            let grace_micros = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
            let age = last_ts.map(|ts| now_micros.saturating_sub(ts));
            if age.is_none_or(|age| age > grace_micros) {
                let detail = match age {
                    Some(age) => format!(
                        "no result point, and the last point is {}s old (grace {}s)",
                        age / 1_000_000,
                        grace.as_secs()
                    ),
                    None => "no result point, and no point at all".to_owned(),
                };
                findings.push(Finding::trace(FindingCode::MissingResult, detail));
            }
        }
        findings
    }
}

/// A permission point with a valid decision, as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
///
/// Its texts are shared by every map that holds it (and by their keys),
/// so a permission costs its texts once.
struct Latest {
    index: usize,
    decision: Decision,
    tool_name: Option<Arc<str>>,
    call_id: Option<Arc<str>>,
}

impl Latest {
    fn of(index: usize, decision: Decision, row: &PointRow<'_>) -> Latest {
        Latest {
            index,
            decision,
            tool_name: row.tool_name.map(Arc::from),
            call_id: row.call_id.map(Arc::from),
        }
    }
}

/// The latest permission decisions, indexed by what rules 1 to 3 match
/// on, so the latest one covering a target is a few lookups, not a scan.
#[derive(Debug, Default)]
struct Decisions {
    /// By `gen_ai.tool.call.id` (rule 1).
    by_call: HashMap<Arc<str>, Latest>,
    /// By `gen_ai.tool.name`, whatever the call id (rule 2, for a target
    /// without a call id).
    by_name: HashMap<Arc<str>, Latest>,
    /// By `gen_ai.tool.name`, permissions without a call id (rule 2, for a
    /// target with one).
    by_name_without_call: HashMap<Arc<str>, Latest>,
    /// Neither (rule 3).
    blanket: Option<Latest>,
}

impl Decisions {
    /// Records `p`, the latest permission so far.
    fn record(&mut self, p: &Latest) {
        match (&p.tool_name, &p.call_id) {
            (None, None) => self.blanket = Some(p.clone()),
            (name, call) => {
                if let Some(call) = call {
                    self.by_call.insert(call.clone(), p.clone());
                }
                if let Some(name) = name {
                    self.by_name.insert(name.clone(), p.clone());
                    if call.is_none() {
                        self.by_name_without_call.insert(name.clone(), p.clone());
                    }
                }
            }
        }
    }

    /// The latest recorded permission that covers (rules 1 to 3) a target
    /// with this call id and tool name.
    fn covering(&self, call_id: Option<&str>, tool_name: Option<&str>) -> Option<&Latest> {
        #[cfg(test)]
        tests::LOOKUPS.with(|n| n.set(n.get() + 1));
        let by_name = match call_id {
            // Rule 1 for permissions with a call id; rule 2 for those
            // without one.
            Some(_) => &self.by_name_without_call,
            // Rule 2 for every permission with a name.
            None => &self.by_name,
        };
        [
            call_id.and_then(|c| self.by_call.get(c)),
            tool_name.and_then(|n| by_name.get(n)),
            self.blanket.as_ref(),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|p| p.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::contract::Decision::{Allow, Approved, Deny, NeedsApproval};
    use std::cell::Cell;

    thread_local! {
        /// `Decisions::covering` calls on this thread.
        pub(super) static LOOKUPS: Cell<u64> = const { Cell::new(0) };
        /// Rows the reference check visited on this thread.
        static VISITS: Cell<u64> = const { Cell::new(0) };
    }

    /// The rules as first written: for each tool point, a scan back for
    /// the latest covering decision and, after a `needs_approval`, a scan
    /// forward for its approval. Quadratic; the reference the indexed
    /// [`Checker`] must agree with.
    fn reference(rows: &[PointRow<'_>], now_micros: i64, grace: Duration) -> Vec<Finding> {
        let visit = || VISITS.with(|n| n.set(n.get() + 1));
        let mut findings = Vec::new();
        let points = || {
            rows.iter()
                .enumerate()
                .filter_map(|(i, r)| r.point.map(|p| (i, r, p)))
        };
        let first = |kind: Point| points().find(|&(_, _, p)| p == kind).map(|(i, _, _)| i);
        if first(Point::Identity).is_none() {
            findings.push(Finding::trace(
                FindingCode::MissingIdentity,
                "the trace has no identity point".to_owned(),
            ));
        }
        if first(Point::Agent).is_none() {
            findings.push(Finding::trace(
                FindingCode::MissingAgent,
                "the trace has no agent point".to_owned(),
            ));
        }
        let result = first(Point::Result);
        let first_non_identity = points()
            .find(|&(_, _, p)| p != Point::Identity)
            .map(|(i, _, _)| i);
        for (i, row, point) in points() {
            if point == Point::Identity && first_non_identity.is_some_and(|o| o < i) {
                findings.push(Finding::at(
                    FindingCode::OutOfOrder,
                    i,
                    row,
                    "an identity point after another point of the trace".to_owned(),
                ));
            } else if let Some(r) = result.filter(|&r| r < i) {
                findings.push(Finding::at(
                    FindingCode::OutOfOrder,
                    i,
                    row,
                    format!("a {point} point after the result (row {r})"),
                ));
            }
            if point == Point::Tool {
                let tool = row;
                let latest = rows[..i].iter().enumerate().rev().find_map(|(n, p)| {
                    visit();
                    p.decides().filter(|_| covers(p, tool)).map(|d| (n, d))
                });
                let stopped = match latest {
                    None => {
                        findings.push(Finding::at(
                            FindingCode::MissingPermission,
                            i,
                            tool,
                            format!(
                                "{} ran with no matching permission before it",
                                describe_tool(tool)
                            ),
                        ));
                        None
                    }
                    Some((n, Deny)) => Some((n, Deny)),
                    Some((n, NeedsApproval)) => {
                        let asked = &rows[n];
                        let approved = rows[n + 1..i].iter().any(|a| {
                            visit();
                            a.decides() == Some(Approved) && (covers(a, asked) || covers(a, tool))
                        });
                        (!approved).then_some((n, NeedsApproval))
                    }
                    Some((_, Allow | Approved)) => None,
                };
                if let Some((n, decision)) = stopped {
                    let why = match decision {
                        Deny => format!("after a deny (row {n})"),
                        _ => format!("while a needs_approval (row {n}) had no approval"),
                    };
                    let mut f = Finding::at(
                        FindingCode::ExecutedAfterDeny,
                        i,
                        tool,
                        format!("{} ran {why}", describe_tool(tool)),
                    );
                    f.decision = Some(decision);
                    findings.push(f);
                }
            }
            if Some(i) == result && row.outcome == Some(Outcome::Abandoned) {
                findings.push(Finding::at(
                    FindingCode::Abandoned,
                    i,
                    row,
                    "the request ended without a result: its trace was dropped".to_owned(),
                ));
            }
        }
        if result.is_none() {
            let last_ts = points()
                .next_back()
                .map(|(_, r, _)| r.ts_micros)
                .or_else(|| rows.last().map(|r| r.ts_micros));
            let grace_micros = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
            let age = last_ts.map(|ts| now_micros.saturating_sub(ts));
            if age.is_none_or(|age| age > grace_micros) {
                let detail = match age {
                    Some(age) => format!(
                        "no result point, and the last point is {}s old (grace {}s)",
                        age / 1_000_000,
                        grace.as_secs()
                    ),
                    None => "no result point, and no point at all".to_owned(),
                };
                findings.push(Finding::trace(FindingCode::MissingResult, detail));
            }
        }
        findings
    }

    /// A small xorshift, for random traces.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<T: Copy>(&mut self, from: &[T]) -> T {
            from[self.below(from.len())]
        }
    }

    #[test]
    fn the_indexed_rules_agree_with_the_rules_as_written() {
        const NAMES: [Option<&str>; 4] = [None, Some("a"), Some("b"), Some("c")];
        const CALLS: [Option<&str>; 4] = [None, Some("c1"), Some("c2"), Some("c3")];
        const DECISIONS: [Option<Decision>; 5] = [
            None,
            Some(Allow),
            Some(Deny),
            Some(NeedsApproval),
            Some(Approved),
        ];
        const OUTCOMES: [Option<Outcome>; 3] =
            [None, Some(Outcome::Success), Some(Outcome::Abandoned)];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut findings = 0;
        for case in 0..5_000 {
            let len = rng.below(24);
            let rows: Vec<PointRow<'static>> = (0..len)
                .map(|i| {
                    // Mostly permissions and tools, so decisions interact.
                    let point = rng.pick(&[
                        None,
                        Some(Point::Identity),
                        Some(Point::Agent),
                        Some(Point::Permission),
                        Some(Point::Permission),
                        Some(Point::Permission),
                        Some(Point::Tool),
                        Some(Point::Tool),
                        Some(Point::Tool),
                        Some(Point::Result),
                    ]);
                    PointRow {
                        ts_micros: NOW - 600_000_000 + i as i64,
                        id: IDS[i % IDS.len()],
                        point,
                        decision: rng.pick(&DECISIONS),
                        tool_name: rng.pick(&NAMES),
                        call_id: rng.pick(&CALLS),
                        outcome: rng.pick(&OUTCOMES),
                        ..PointRow::default()
                    }
                })
                .collect();
            let got = check(&rows, NOW, GRACE);
            assert_eq!(got, reference(&rows, NOW, GRACE), "case {case}: {rows:#?}");
            findings += got.len();
        }
        assert!(findings > 10_000, "the cases find things: {findings}");
    }

    /// Tens of thousands of tool points: the indexed rules look up each
    /// one a bounded number of times, where the rules as written compare
    /// every tool point with every row before it.
    #[test]
    fn a_huge_trace_costs_a_few_lookups_per_point() {
        fn worst_case(n: usize) -> Vec<PointRow<'static>> {
            // One permission up front, then tool points that each match
            // only it (scanning back past every tool point before), with
            // a needs_approval and its approval late on.
            let mut rows = T::head().perm(Allow, Some("search"), None).0;
            rows.extend((0..n).map(|i| PointRow {
                ts_micros: NOW - 60_000_000 + i as i64,
                point: Some(Point::Tool),
                tool_name: Some("search"),
                call_id: Some(if i % 2 == 0 { "c1" } else { "c2" }),
                ..PointRow::default()
            }));
            rows.push(PointRow {
                point: Some(Point::Permission),
                decision: Some(NeedsApproval),
                tool_name: Some("send"),
                ..PointRow::default()
            });
            rows.push(PointRow {
                point: Some(Point::Permission),
                decision: Some(Approved),
                call_id: Some("c9"),
                ..PointRow::default()
            });
            rows.extend((0..n).map(|_| PointRow {
                point: Some(Point::Tool),
                tool_name: Some("send"),
                ..PointRow::default()
            }));
            rows
        }
        let count = |n: &'static std::thread::LocalKey<Cell<u64>>, run: &mut dyn FnMut()| {
            n.with(|c| c.set(0));
            run();
            n.with(Cell::get)
        };

        let n = 50_000;
        let rows = worst_case(n);
        let mut findings = Vec::new();
        let lookups = count(&LOOKUPS, &mut || findings = check(&rows, NOW, GRACE));
        // Every `send` ran while its needs_approval had no approval (the
        // approval names another call): one finding each, and the trace
        // has no result.
        assert_eq!(findings.len(), n + 1, "{:?}", findings.first());
        assert!(
            lookups <= 3 * (2 * n as u64),
            "{lookups} lookups for {} tool points",
            2 * n
        );

        // The rules as written visit a quadratic number of rows: on a
        // trace a hundred times smaller, already more than the indexed
        // ones look up above (at this size they would visit 2.5 billion).
        let small = worst_case(n / 100);
        let visits = count(&VISITS, &mut || {
            assert_eq!(reference(&small, NOW, GRACE), check(&small, NOW, GRACE))
        });
        let m = (n / 100) as u64;
        assert!(visits > m * m && visits > lookups, "{visits}");
    }

    #[test]
    fn past_the_limit_only_the_checked_points_count() {
        let t = T::head()
            .perm(Deny, Some("rm"), None)
            .tool(Some("rm"), None)
            .tool(Some("rm"), None)
            .ok();
        // No limit, or the limit is the trace's size: as `check`.
        for limit in [usize::MAX, t.0.len()] {
            let mut c = Checker::with_limit(limit);
            t.0.iter().for_each(|r| assert!(c.push(r)));
            assert!(!c.too_large());
            assert_eq!(c.finish(NOW, GRACE), t.findings());
        }
        // Four rows checked: the deny found, the rest only counted; no
        // missing_result (the result was not reached), trace_too_large last.
        let mut c = Checker::with_limit(4);
        let pushed: Vec<bool> = t.0.iter().map(|r| c.push(r)).collect();
        assert_eq!(pushed, [true, true, true, true, false, false]);
        assert_eq!((c.rows(), c.too_large()), (6, true));
        let f = c.finish(NOW - 3_600_000_000, GRACE);
        let codes: Vec<(&str, Option<usize>)> =
            f.iter().map(|f| (f.code.as_str(), f.row)).collect();
        assert_eq!(
            codes,
            [("executed_after_deny", Some(3)), ("trace_too_large", None)]
        );
        assert_eq!(
            f[1].detail,
            "the trace has 6 rows, more than the 4 checked: its completeness is unknown"
        );
        // An empty trace past a limit of 0.
        let mut c = Checker::with_limit(0);
        c.push(&PointRow::default());
        assert_eq!(c.finish(NOW, GRACE)[0].code, FindingCode::TraceTooLarge);
    }

    const NOW: i64 = 1_700_000_000_000_000;
    const GRACE: Duration = Duration::from_secs(300);
    const IDS: [&str; 16] = [
        "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13",
        "r14", "r15",
    ];

    /// A trace under construction: one row per call, a millisecond apart,
    /// the first a minute before `NOW`.
    #[derive(Default)]
    struct T(Vec<PointRow<'static>>);

    impl T {
        fn new() -> T {
            T::default()
        }

        fn push(mut self, row: PointRow<'static>) -> T {
            let i = self.0.len();
            self.0.push(PointRow {
                ts_micros: NOW - 60_000_000 + i as i64 * 1_000,
                id: IDS[i],
                ..row
            });
            self
        }

        fn point(self, point: Point) -> T {
            self.push(PointRow {
                point: Some(point),
                ..PointRow::default()
            })
        }

        fn id(self) -> T {
            self.point(Point::Identity)
        }

        fn agent(self) -> T {
            self.point(Point::Agent)
        }

        fn plain(self) -> T {
            self.push(PointRow::default())
        }

        fn perm(self, d: Decision, tool: Option<&'static str>, call: Option<&'static str>) -> T {
            self.push(PointRow {
                point: Some(Point::Permission),
                decision: Some(d),
                tool_name: tool,
                call_id: call,
                ..PointRow::default()
            })
        }

        fn tool(self, tool: Option<&'static str>, call: Option<&'static str>) -> T {
            self.push(PointRow {
                point: Some(Point::Tool),
                tool_name: tool,
                call_id: call,
                ..PointRow::default()
            })
        }

        fn result(self, outcome: Outcome) -> T {
            self.push(PointRow {
                point: Some(Point::Result),
                outcome: Some(outcome),
                ..PointRow::default()
            })
        }

        fn ok(self) -> T {
            self.result(Outcome::Success)
        }

        /// The usual head: identity, agent.
        fn head() -> T {
            T::new().id().agent()
        }

        fn findings_at(&self, now: i64) -> Vec<Finding> {
            check(&self.0, now, GRACE)
        }

        fn findings(&self) -> Vec<Finding> {
            self.findings_at(NOW)
        }

        fn codes(&self) -> Vec<&'static str> {
            self.findings().iter().map(|f| f.code.as_str()).collect()
        }

        /// Codes with the row each is about.
        fn at(&self) -> Vec<(&'static str, Option<usize>)> {
            self.findings()
                .iter()
                .map(|f| (f.code.as_str(), f.row))
                .collect()
        }
    }

    const NONE: [&str; 0] = [];

    #[test]
    fn codes_are_exact() {
        let names: Vec<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "missing_identity",
                "missing_agent",
                "missing_permission",
                "executed_after_deny",
                "missing_result",
                "abandoned",
                "out_of_order",
                "trace_too_large"
            ]
        );
        for c in FindingCode::ALL {
            assert_eq!(FindingCode::from_name(c.as_str()), Some(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(FindingCode::from_name("missing"), None);
    }

    // ---- complete traces: no findings ----

    #[test]
    fn a_trace_without_tools_needs_no_permission() {
        assert_eq!(T::head().ok().codes(), NONE);
    }

    #[test]
    fn plain_rows_are_ignored_anywhere() {
        let t = T::new()
            .plain()
            .id()
            .plain()
            .agent()
            .perm(Allow, Some("search"), None)
            .plain()
            .tool(Some("search"), None)
            .ok()
            .plain();
        assert_eq!(t.codes(), NONE);
    }

    #[test]
    fn call_id_matching() {
        let t = T::head()
            .perm(Allow, Some("search"), Some("c1"))
            .perm(Allow, Some("search"), Some("c2"))
            .tool(Some("search"), Some("c1"))
            .tool(Some("search"), Some("c2"))
            .ok();
        assert_eq!(t.codes(), NONE);
        // A permission with only a call id covers that call, whatever its name.
        let t = T::head()
            .perm(Allow, None, Some("c1"))
            .tool(Some("search"), Some("c1"))
            .ok();
        assert_eq!(t.codes(), NONE);
    }

    #[test]
    fn name_matching() {
        // The permission names the tool only; the tool has a call id.
        let t = T::head()
            .perm(Allow, Some("search"), None)
            .tool(Some("search"), Some("c1"))
            .tool(Some("search"), Some("c2"))
            .ok();
        assert_eq!(t.codes(), NONE);
        // The permission has a call id, the tool does not: names decide.
        let t = T::head()
            .perm(Allow, Some("search"), Some("c1"))
            .tool(Some("search"), None)
            .ok();
        assert_eq!(t.codes(), NONE);
    }

    #[test]
    fn blanket_permissions_cover_every_later_tool() {
        let t = T::head()
            .perm(Allow, None, None)
            .tool(Some("search"), Some("c1"))
            .tool(Some("fetch"), None)
            .tool(None, None) // a model call
            .ok();
        assert_eq!(t.codes(), NONE);
    }

    #[test]
    fn approval_after_needs_approval() {
        let t = T::head()
            .perm(NeedsApproval, Some("send"), Some("c1"))
            .perm(Approved, Some("send"), Some("c1"))
            .tool(Some("send"), Some("c1"))
            .ok();
        assert_eq!(t.codes(), NONE);
        // The approval names the call only; a blanket approval.
        for (tool, call) in [(None, Some("c1")), (None, None)] {
            let t = T::head()
                .perm(NeedsApproval, Some("send"), Some("c1"))
                .perm(Approved, tool, call)
                .tool(Some("send"), Some("c1"))
                .ok();
            assert_eq!(t.codes(), NONE, "{tool:?} {call:?}");
        }
        // Approved for the request (its call id), the tool has no call id:
        // the approval matches the needs_approval, not the tool.
        let t = T::head()
            .perm(NeedsApproval, Some("send"), Some("c1"))
            .perm(Approved, None, Some("c1"))
            .tool(Some("send"), None)
            .ok();
        assert_eq!(t.codes(), NONE);
    }

    #[test]
    fn the_latest_decision_wins() {
        let t = T::head()
            .perm(Deny, Some("search"), None)
            .perm(Allow, Some("search"), None)
            .tool(Some("search"), None)
            .ok();
        assert_eq!(t.codes(), NONE);
        // A deny of another tool does not matter.
        let t = T::head()
            .perm(Allow, Some("search"), None)
            .perm(Deny, Some("fetch"), None)
            .tool(Some("search"), None)
            .ok();
        assert_eq!(t.codes(), NONE);
        // A deny after the tool ran does not matter either.
        let t = T::head()
            .perm(Allow, Some("search"), None)
            .tool(Some("search"), None)
            .perm(Deny, Some("search"), None)
            .ok();
        assert_eq!(t.codes(), NONE);
    }

    #[test]
    fn several_identity_points_first_are_fine() {
        let t = T::new().id().id().agent().ok();
        assert_eq!(t.codes(), NONE);
    }

    // ---- every code alone ----

    #[test]
    fn each_code_alone() {
        let cases = [
            ("missing_identity", T::new().agent().ok()),
            ("missing_agent", T::new().id().ok()),
            (
                "missing_permission",
                T::head().tool(Some("search"), None).ok(),
            ),
            (
                "executed_after_deny",
                T::head()
                    .perm(Deny, Some("search"), None)
                    .tool(Some("search"), None)
                    .ok(),
            ),
            ("abandoned", T::head().result(Outcome::Abandoned)),
            ("out_of_order", T::new().agent().id().ok()),
        ];
        for (code, t) in cases {
            assert_eq!(t.codes(), [code], "{code}");
        }
        // missing_result needs a stale trace.
        let t = T::head();
        assert_eq!(
            t.findings_at(NOW + 600_000_000)
                .iter()
                .map(|f| f.code.as_str())
                .collect::<Vec<_>>(),
            ["missing_result"]
        );
    }

    #[test]
    fn a_failure_is_complete() {
        assert_eq!(T::head().result(Outcome::Failure).codes(), NONE);
    }

    // ---- the rules in detail ----

    #[test]
    fn missing_result_waits_for_the_grace_period() {
        let t = T::head().perm(Allow, None, None).tool(Some("x"), None);
        let last = t.0.last().unwrap().ts_micros;
        let grace = GRACE.as_micros() as i64;
        assert!(t.findings_at(last + grace).is_empty());
        let f = t.findings_at(last + grace + 1);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, FindingCode::MissingResult);
        assert_eq!(f[0].row, None);
        // A plain row after the last point does not restart the wait.
        let t = t.plain();
        assert_eq!(t.findings_at(last + grace + 1).len(), 1);
        // No rows at all: nothing to wait for.
        let codes: Vec<&str> = check(&[], NOW, GRACE)
            .iter()
            .map(|f| f.code.as_str())
            .collect();
        assert_eq!(
            codes,
            ["missing_identity", "missing_agent", "missing_result"]
        );
        // A huge grace does not overflow.
        assert_eq!(
            check(&t.0, NOW, Duration::MAX)
                .iter()
                .filter(|f| f.code == FindingCode::MissingResult)
                .count(),
            0
        );
    }

    #[test]
    fn executed_after_deny_details() {
        let t = T::head()
            .perm(Deny, Some("rm"), Some("c9"))
            .tool(Some("rm"), Some("c9"))
            .ok();
        let f = t.findings();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, FindingCode::ExecutedAfterDeny);
        assert_eq!(f[0].row, Some(3));
        assert_eq!(f[0].row_id.as_deref(), Some("r3"));
        assert_eq!(f[0].tool.as_deref(), Some("rm"));
        assert_eq!(f[0].call_id.as_deref(), Some("c9"));
        assert_eq!(f[0].decision, Some(Deny));
        assert!(f[0].detail.contains("after a deny (row 2)"), "{}", f[0]);
        // Latest decision wins the other way round too.
        let t = T::head()
            .perm(Allow, Some("rm"), None)
            .perm(Deny, Some("rm"), None)
            .tool(Some("rm"), None)
            .ok();
        assert_eq!(t.at(), [("executed_after_deny", Some(4))]);
        // A blanket deny stops everything after it.
        let t = T::head()
            .perm(Allow, Some("rm"), None)
            .perm(Deny, None, None)
            .tool(Some("rm"), None)
            .ok();
        assert_eq!(t.codes(), ["executed_after_deny"]);
    }

    #[test]
    fn needs_approval_without_approval() {
        // Never approved.
        let t = T::head()
            .perm(NeedsApproval, Some("send"), None)
            .tool(Some("send"), None)
            .ok();
        let f = t.findings();
        assert_eq!(t.codes(), ["executed_after_deny"]);
        assert_eq!(f[0].decision, Some(NeedsApproval));
        // Approved only after the tool ran.
        let t = T::head()
            .perm(NeedsApproval, Some("send"), None)
            .tool(Some("send"), None)
            .perm(Approved, Some("send"), None)
            .ok();
        assert_eq!(t.at(), [("executed_after_deny", Some(3))]);
        // Approved, but another tool.
        let t = T::head()
            .perm(NeedsApproval, Some("send"), None)
            .perm(Approved, Some("fetch"), None)
            .tool(Some("send"), None)
            .ok();
        assert_eq!(t.codes(), ["executed_after_deny"]);
        // Approved, then asked again: the new request is pending.
        let t = T::head()
            .perm(NeedsApproval, Some("send"), None)
            .perm(Approved, Some("send"), None)
            .perm(NeedsApproval, Some("send"), None)
            .tool(Some("send"), None)
            .ok();
        assert_eq!(t.codes(), ["executed_after_deny"]);
        // Approval of another call id does not cover this call.
        let t = T::head()
            .perm(NeedsApproval, Some("send"), Some("c1"))
            .perm(Approved, Some("send"), Some("c2"))
            .tool(Some("send"), Some("c1"))
            .ok();
        assert_eq!(t.codes(), ["executed_after_deny"]);
    }

    #[test]
    fn missing_permission_cases() {
        // Permission for another tool.
        let t = T::head()
            .perm(Allow, Some("fetch"), None)
            .tool(Some("search"), None)
            .ok();
        assert_eq!(t.at(), [("missing_permission", Some(3))]);
        // Call ids differ although the names agree (rule 1 before rule 2).
        let t = T::head()
            .perm(Allow, Some("search"), Some("c2"))
            .tool(Some("search"), Some("c1"))
            .ok();
        assert_eq!(t.codes(), ["missing_permission"]);
        // A permission with only a call id, a tool with none.
        let t = T::head()
            .perm(Allow, None, Some("c1"))
            .tool(Some("search"), None)
            .ok();
        assert_eq!(t.codes(), ["missing_permission"]);
        // The permission comes after the tool.
        let t = T::head()
            .tool(Some("search"), None)
            .perm(Allow, Some("search"), None)
            .ok();
        assert_eq!(t.at(), [("missing_permission", Some(2))]);
        // A blanket permission after the first tool covers only the second.
        let t = T::head()
            .tool(Some("a"), None)
            .perm(Allow, None, None)
            .tool(Some("b"), None)
            .ok();
        assert_eq!(t.at(), [("missing_permission", Some(2))]);
        // A model call (no tool name) is not covered by a named permission.
        let t = T::head()
            .perm(Allow, Some("search"), None)
            .tool(None, None)
            .ok();
        assert_eq!(t.codes(), ["missing_permission"]);
        // A permission point with no (valid) decision authorizes nothing.
        let t = T::head()
            .push(PointRow {
                point: Some(Point::Permission),
                tool_name: Some("search"),
                ..PointRow::default()
            })
            .tool(Some("search"), None)
            .ok();
        assert_eq!(t.codes(), ["missing_permission"]);
        // Each unauthorized tool point is its own finding.
        let t = T::head()
            .tool(Some("a"), Some("c1"))
            .tool(Some("b"), None)
            .ok();
        let f = t.findings();
        assert_eq!(
            t.at(),
            [
                ("missing_permission", Some(2)),
                ("missing_permission", Some(3))
            ]
        );
        assert_eq!(f[0].call_id.as_deref(), Some("c1"));
        assert_eq!(f[1].call_id, None);
        assert_eq!(f[1].tool.as_deref(), Some("b"));
    }

    #[test]
    fn out_of_order_cases() {
        // Identity after the agent.
        let t = T::new().agent().id().ok();
        assert_eq!(t.at(), [("out_of_order", Some(1))]);
        // A tool after the result.
        let t = T::head().perm(Allow, None, None).ok().tool(Some("x"), None);
        assert_eq!(t.at(), [("out_of_order", Some(4))]);
        // An identity after the result: one finding for that row.
        let t = T::head().ok().id();
        assert_eq!(t.at(), [("out_of_order", Some(3))]);
        // A second result after the first.
        let t = T::head().ok().result(Outcome::Failure);
        assert_eq!(t.at(), [("out_of_order", Some(3))]);
        // The first result decides whether the trace was abandoned.
        let t = T::head().ok().result(Outcome::Abandoned);
        assert_eq!(t.at(), [("out_of_order", Some(3))]);
        let t = T::head().result(Outcome::Abandoned).ok();
        assert_eq!(t.at(), [("abandoned", Some(2)), ("out_of_order", Some(3))]);
        // Plain rows after the result are fine.
        assert_eq!(T::head().ok().plain().plain().codes(), NONE);
    }

    // ---- combinations ----

    #[test]
    fn combinations() {
        // Only a tool point, long ago.
        let t = T::new().tool(Some("rm"), None);
        let codes: Vec<&str> = t
            .findings_at(NOW + 3_600_000_000)
            .iter()
            .map(|f| f.code.as_str())
            .collect();
        assert_eq!(
            codes,
            [
                "missing_identity",
                "missing_agent",
                "missing_permission",
                "missing_result"
            ]
        );
        // Identity late, a deny ignored, the trace abandoned, a point after.
        let t = T::new()
            .agent()
            .id()
            .perm(Deny, Some("rm"), None)
            .tool(Some("rm"), None)
            .result(Outcome::Abandoned)
            .tool(Some("rm"), None);
        assert_eq!(
            t.at(),
            [
                ("out_of_order", Some(1)),
                ("executed_after_deny", Some(3)),
                ("abandoned", Some(4)),
                ("out_of_order", Some(5)),
                ("executed_after_deny", Some(5)),
            ]
        );
        // No agent, and one tool of two unauthorized.
        let t = T::new()
            .id()
            .perm(Allow, Some("a"), None)
            .tool(Some("a"), None)
            .tool(Some("b"), None)
            .ok();
        assert_eq!(
            t.at(),
            [("missing_agent", None), ("missing_permission", Some(3))]
        );
        // No identity, pending approval, and no result yet (in flight).
        let t = T::new()
            .agent()
            .perm(NeedsApproval, Some("send"), None)
            .tool(Some("send"), None);
        assert_eq!(
            t.at(),
            [("missing_identity", None), ("executed_after_deny", Some(2))]
        );
    }

    // ---- JSON and parsing ----

    #[test]
    fn findings_as_json() {
        let t = T::head()
            .perm(Deny, Some("rm"), Some("c9"))
            .tool(Some("rm"), Some("c9"))
            .ok();
        let json = t.findings()[0].to_json();
        assert_eq!(json["code"], "executed_after_deny");
        assert_eq!(json["row"], 3);
        assert_eq!(json["row_id"], "r3");
        assert_eq!(json["tool"], "rm");
        assert_eq!(json["call_id"], "c9");
        assert_eq!(json["decision"], "deny");
        assert!(json["detail"].as_str().unwrap().contains("`rm`"));

        let json = T::new().agent().ok().findings()[0].to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "code": "missing_identity",
                "detail": "the trace has no identity point"
            })
        );
        // Rows without ids leave row_id out.
        let rows = [PointRow {
            point: Some(Point::Tool),
            tool_name: Some("x"),
            ..PointRow::default()
        }];
        let f = check(&rows, 0, GRACE);
        let json = f
            .iter()
            .find(|f| f.code == FindingCode::MissingPermission)
            .unwrap()
            .to_json();
        assert_eq!(json["row"], 0);
        assert!(json.get("row_id").is_none());
        assert!(json.get("call_id").is_none());
    }

    #[test]
    fn from_fields_reads_the_contract_names() {
        let fields = serde_json::json!({
            "audit.point": "tool",
            "gen_ai.tool.name": "search",
            "gen_ai.tool.call.id": "c1",
        });
        let get = |name: &str| fields.get(name)?.as_str();
        let row = PointRow::from_fields(5, "r", None, get);
        assert_eq!(row.point, Some(Point::Tool));
        assert_eq!(row.tool_name, Some("search"));
        assert_eq!(row.call_id, Some("c1"));
        assert_eq!(row.ts_micros, 5);
        // The kind column wins over the field.
        let row = PointRow::from_fields(5, "r", Some(5), get);
        assert_eq!(row.point, Some(Point::Result));
        // Unknown kinds and names read as None.
        let odd = serde_json::json!({"audit.point": "nope", "decision": "maybe", "outcome": "meh"});
        let row = PointRow::from_fields(0, "", Some(9), |n| odd.get(n)?.as_str());
        assert_eq!(row.point, None);
        assert_eq!(row.decision, None);
        assert_eq!(row.outcome, None);
        let fields = serde_json::json!({"decision": "needs_approval", "outcome": "abandoned"});
        let row = PointRow::from_fields(0, "", Some(3), |n| fields.get(n)?.as_str());
        assert_eq!(row.decision, Some(NeedsApproval));
        assert_eq!(row.outcome, Some(Outcome::Abandoned));
    }
}
