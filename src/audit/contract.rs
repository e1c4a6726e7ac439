//! The audit wire contract: the one source of truth for every name an
//! audit point carries.
//!
//! The typed API ([`super::Trace`] and the point builders), the writer
//! (which fills the `kind smallint` column), the renderers and the
//! completeness check ([`super::rules`]) all take their names from here,
//! so no two of them can disagree.
//!
//! An audit point is an ordinary `tracing` event with target [`TARGET`]
//! and a string field [`POINT_FIELD`] whose value is a [`Point`] name.

use std::fmt;

use crate::row::{Field, Value};

/// The `tracing` target of every audit point.
pub const TARGET: &str = "ringtrail::audit";

/// The string field that says which of the five points an event is.
pub const POINT_FIELD: &str = "audit.point";

/// Field names of the audit points, as they appear on the wire (event
/// fields) and in `ringtrail.logs` (a context column or a `fields` key).
///
/// OpenTelemetry GenAI and ECS names are used where they exist.
pub mod field {
    /// The trace id every point carries (fills the `trace_id` column).
    pub const TRACE_ID: &str = "trace_id";

    /// identity: the user (required; may come from the span instead).
    pub const USER_ID: &str = "user_id";
    /// identity: the session.
    pub const SESSION_ID: &str = "session_id";
    /// identity: the client or app id.
    pub const CLIENT_ID: &str = "client_id";
    /// identity: the tenant.
    pub const TENANT_ID: &str = "tenant.id";
    /// identity: how the user authenticated (`oauth`, `mtls`, ...).
    pub const AUTH_METHOD: &str = "auth.method";
    /// identity: the caller's IP address.
    pub const SOURCE_IP: &str = "source.ip";

    /// agent: the agent's id (required).
    pub const AGENT_ID: &str = "agent.id";
    /// agent: the agent's display name.
    pub const AGENT_NAME: &str = "agent.name";
    /// agent: the agent's version.
    pub const AGENT_VERSION: &str = "agent.version";
    /// agent and tool (model call): the model requested.
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    /// agent: the model provider (`openai`, `anthropic`, ...).
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// agent: the prompt template's id.
    pub const PROMPT_TEMPLATE_ID: &str = "prompt.template.id";
    /// agent: the prompt template's version.
    pub const PROMPT_TEMPLATE_VERSION: &str = "prompt.template.version";
    /// agent: the MCP server the agent talks to.
    pub const MCP_SERVER_NAME: &str = "mcp.server.name";

    /// permission: the [`Decision`](super::Decision) (required).
    pub const DECISION: &str = "decision";
    /// permission: the policy that decided (required).
    pub const POLICY_ID: &str = "policy.id";
    /// permission: the policy's version.
    pub const POLICY_VERSION: &str = "policy.version";
    /// permission: a reason code.
    pub const REASON: &str = "reason";
    /// permission: the scopes granted or checked.
    pub const SCOPES: &str = "scopes";
    /// permission: who approved (for `approved`).
    pub const APPROVER: &str = "approver";

    /// permission and tool: the tool's name (required on a tool
    /// execution).
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    /// permission and tool: the tool call's id.
    pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
    /// tool: the operation of a model call, e.g. `chat` (required on a
    /// model call).
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    /// tool: the MCP method, e.g. `tools/call`.
    pub const MCP_METHOD_NAME: &str = "mcp.method.name";
    /// tool: SHA-256 of the arguments (not the raw arguments).
    pub const ARGS_SHA256: &str = "args.sha256";
    /// tool and result: duration in nanoseconds.
    pub const DURATION_NS: &str = "duration_ns";
    /// tool: the [`Status`](super::Status).
    pub const STATUS: &str = "status";
    /// tool (model call): input tokens.
    pub const INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// tool (model call): output tokens.
    pub const OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// tool (model call): cached input tokens.
    pub const CACHED_TOKENS: &str = "gen_ai.usage.cached_tokens";

    /// result: the [`Outcome`](super::Outcome) (required).
    pub const OUTCOME: &str = "outcome";
    /// result: the error type of a failure.
    pub const ERROR_TYPE: &str = "error.type";
    /// result: total tokens of the request.
    pub const TOKENS_TOTAL: &str = "tokens.total";
    /// result: cost in integer micro-USD.
    pub const COST_MICRO_USD: &str = "cost.micro_usd";

    /// Every field name above, [`TRACE_ID`] first.
    pub const ALL: &[&str] = &[
        TRACE_ID,
        USER_ID,
        SESSION_ID,
        CLIENT_ID,
        TENANT_ID,
        AUTH_METHOD,
        SOURCE_IP,
        AGENT_ID,
        AGENT_NAME,
        AGENT_VERSION,
        REQUEST_MODEL,
        PROVIDER_NAME,
        PROMPT_TEMPLATE_ID,
        PROMPT_TEMPLATE_VERSION,
        MCP_SERVER_NAME,
        DECISION,
        POLICY_ID,
        POLICY_VERSION,
        REASON,
        SCOPES,
        APPROVER,
        TOOL_NAME,
        TOOL_CALL_ID,
        OPERATION_NAME,
        MCP_METHOD_NAME,
        ARGS_SHA256,
        DURATION_NS,
        STATUS,
        INPUT_TOKENS,
        OUTPUT_TOKENS,
        CACHED_TOKENS,
        OUTCOME,
        ERROR_TYPE,
        TOKENS_TOTAL,
        COST_MICRO_USD,
    ];
}

/// Fields every point carries besides its own: [`POINT_FIELD`] and
/// [`field::TRACE_ID`] (which may come from the span instead).
pub const COMMON_FIELDS: &[&str] = &[POINT_FIELD, field::TRACE_ID];

/// One of the five audit points, in trace order.
///
/// The discriminant is the value of the `kind smallint` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i16)]
pub enum Point {
    /// Who is asking.
    Identity = 1,
    /// Which agent, model and prompt.
    Agent = 2,
    /// The policy decision.
    Permission = 3,
    /// A tool execution or a model call.
    Tool = 4,
    /// How the request ended.
    Result = 5,
}

impl Point {
    /// The five points, in trace order.
    pub const ALL: [Point; 5] = [
        Point::Identity,
        Point::Agent,
        Point::Permission,
        Point::Tool,
        Point::Result,
    ];

    /// The value of the [`POINT_FIELD`] field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Point::Identity => "identity",
            Point::Agent => "agent",
            Point::Permission => "permission",
            Point::Tool => "tool",
            Point::Result => "result",
        }
    }

    /// The point named `name` (exact, lowercase), if any.
    pub fn from_name(name: &str) -> Option<Point> {
        Point::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The value of the `kind smallint` column: 1 to 5.
    pub const fn kind(self) -> i16 {
        self as i16
    }

    /// The point whose `kind` is `kind`, if any.
    pub fn from_kind(kind: i16) -> Option<Point> {
        Point::ALL.into_iter().find(|p| p.kind() == kind)
    }

    /// Fields the point must all carry.
    ///
    /// `user_id` of an identity point may come from the span rather than
    /// from the event. A tool point has none here: it needs one of
    /// [`required_any_of`](Point::required_any_of).
    pub const fn required_fields(self) -> &'static [&'static str] {
        match self {
            Point::Identity => &[field::USER_ID],
            Point::Agent => &[field::AGENT_ID],
            Point::Permission => &[field::DECISION, field::POLICY_ID],
            Point::Tool => &[],
            Point::Result => &[field::OUTCOME],
        }
    }

    /// Fields of which the point must carry at least one: for a tool
    /// point, `gen_ai.tool.name` (a tool execution) or
    /// `gen_ai.operation.name` (a model call). Empty for the others.
    pub const fn required_any_of(self) -> &'static [&'static str] {
        match self {
            Point::Tool => &[field::TOOL_NAME, field::OPERATION_NAME],
            _ => &[],
        }
    }

    /// Fields the point should carry when they are known.
    pub const fn recommended_fields(self) -> &'static [&'static str] {
        match self {
            Point::Identity => &[
                field::SESSION_ID,
                field::CLIENT_ID,
                field::TENANT_ID,
                field::AUTH_METHOD,
                field::SOURCE_IP,
            ],
            Point::Agent => &[
                field::AGENT_NAME,
                field::AGENT_VERSION,
                field::REQUEST_MODEL,
                field::PROVIDER_NAME,
                field::PROMPT_TEMPLATE_ID,
                field::PROMPT_TEMPLATE_VERSION,
                field::MCP_SERVER_NAME,
            ],
            Point::Permission => &[
                field::POLICY_VERSION,
                field::REASON,
                field::SCOPES,
                field::APPROVER,
                field::TOOL_NAME,
                field::TOOL_CALL_ID,
            ],
            Point::Tool => &[
                field::REQUEST_MODEL,
                field::TOOL_CALL_ID,
                field::MCP_METHOD_NAME,
                field::ARGS_SHA256,
                field::DURATION_NS,
                field::STATUS,
                field::INPUT_TOKENS,
                field::OUTPUT_TOKENS,
                field::CACHED_TOKENS,
            ],
            Point::Result => &[
                field::ERROR_TYPE,
                field::DURATION_NS,
                field::TOKENS_TOTAL,
                field::COST_MICRO_USD,
            ],
        }
    }

    /// True when `name` belongs to this point's contract: a
    /// [common](COMMON_FIELDS), required or recommended field. Other
    /// names are still kept (in `fields`), they are just not part of the
    /// contract.
    pub fn is_contract_field(self, name: &str) -> bool {
        COMMON_FIELDS.contains(&name)
            || self.required_fields().contains(&name)
            || self.required_any_of().contains(&name)
            || self.recommended_fields().contains(&name)
    }

    /// True when `has` says every required field is present (and, for a
    /// tool point, at least one of [`required_any_of`](Point::required_any_of)).
    pub fn has_required(self, has: impl Fn(&str) -> bool) -> bool {
        let any = self.required_any_of();
        self.required_fields().iter().all(|f| has(f))
            && (any.is_empty() || any.iter().any(|f| has(f)))
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which point an event is, when it is one: its target is [`TARGET`] and
/// it has a string field [`POINT_FIELD`] holding a point's name. What the
/// writer uses to fill the `kind` column.
pub fn point_of(target: &str, fields: &[Field<'_>]) -> Option<Point> {
    if target != TARGET {
        return None;
    }
    fields.iter().find_map(|f| match f.value {
        Value::Str(s) if f.name == POINT_FIELD => Point::from_name(s),
        _ => None,
    })
}

/// Defines a string-valued enum with `ALL`, `as_str`, `from_name` and
/// `Display`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value written `name` on the wire (exact, lowercase), if any.
            pub fn from_name(name: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// A permission point's decision (the `decision` field).
    ///
    /// The typed API records it as its `&'static str` name; with the raw
    /// `event!` path write `decision = Decision::Deny.as_str()`.
    pub enum Decision {
        /// The action may run.
        Allow => "allow",
        /// The action must not run.
        Deny => "deny",
        /// The action must wait for an approval (`approved`).
        NeedsApproval => "needs_approval",
        /// A pending action was approved.
        Approved => "approved",
    }
}

named_enum! {
    /// A tool point's `status`.
    pub enum Status {
        /// The tool or model call succeeded.
        Ok => "ok",
        /// It failed.
        Error => "error",
    }
}

named_enum! {
    /// A result point's `outcome`.
    pub enum Outcome {
        /// The request succeeded.
        Success => "success",
        /// It failed.
        Failure => "failure",
        /// It ended without a result: the [`Trace`](super::Trace) was
        /// dropped (early return, `?`, panic) before `finish`.
        Abandoned => "abandoned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::CONTEXT_KEYS;

    #[test]
    fn points_round_trip_names_and_kinds() {
        let names: Vec<&str> = Point::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, ["identity", "agent", "permission", "tool", "result"]);
        for (i, p) in Point::ALL.into_iter().enumerate() {
            assert_eq!(p.kind(), i as i16 + 1);
            assert_eq!(Point::from_kind(p.kind()), Some(p));
            assert_eq!(Point::from_name(p.as_str()), Some(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(Point::from_kind(0), None);
        assert_eq!(Point::from_kind(6), None);
        assert_eq!(Point::from_name("Tool"), None);
    }

    #[test]
    fn enums_round_trip() {
        let d: Vec<&str> = Decision::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(d, ["allow", "deny", "needs_approval", "approved"]);
        let s: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(s, ["ok", "error"]);
        let o: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(o, ["success", "failure", "abandoned"]);
        for d in Decision::ALL {
            assert_eq!(Decision::from_name(d.as_str()), Some(*d));
        }
        for s in Status::ALL {
            assert_eq!(Status::from_name(&s.to_string()), Some(*s));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_name(o.as_str()), Some(*o));
        }
        assert_eq!(Decision::from_name("DENY"), None);
    }

    #[test]
    fn field_lists_are_consistent() {
        let mut all = field::ALL.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), field::ALL.len(), "no duplicate names");
        for p in Point::ALL {
            let lists = [
                p.required_fields(),
                p.required_any_of(),
                p.recommended_fields(),
            ];
            let mut names: Vec<&str> = lists.concat();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{p}: a name in two lists");
            for name in names {
                assert!(field::ALL.contains(&name), "{name}");
                assert!(p.is_contract_field(name));
            }
            assert!(p.is_contract_field(POINT_FIELD));
            assert!(p.is_contract_field(field::TRACE_ID));
            assert!(!p.is_contract_field("password"));
        }
        // Every field name is used by some point.
        for name in &field::ALL[1..] {
            assert!(
                Point::ALL.iter().any(|p| p.is_contract_field(name)),
                "{name} unused"
            );
        }
    }

    #[test]
    fn context_names_match_the_columns() {
        for name in [
            field::TRACE_ID,
            field::USER_ID,
            field::SESSION_ID,
            field::CLIENT_ID,
        ] {
            assert!(CONTEXT_KEYS.contains(&name), "{name}");
        }
    }

    #[test]
    fn required_fields_are_checked() {
        let has = |names: &'static [&'static str]| move |n: &str| names.contains(&n);
        assert!(Point::Tool.has_required(has(&[field::TOOL_NAME])));
        assert!(Point::Tool.has_required(has(&[field::OPERATION_NAME])));
        assert!(!Point::Tool.has_required(has(&[field::TOOL_CALL_ID])));
        assert!(Point::Permission.has_required(has(&[field::DECISION, field::POLICY_ID])));
        assert!(!Point::Permission.has_required(has(&[field::DECISION])));
        assert!(Point::Result.has_required(has(&[field::OUTCOME])));
        assert!(!Point::Agent.has_required(has(&[])));
    }

    #[test]
    fn point_of_needs_target_and_field() {
        let fields = [
            Field {
                name: "x",
                value: Value::U64(1),
            },
            Field {
                name: POINT_FIELD,
                value: Value::Str("tool"),
            },
        ];
        assert_eq!(point_of(TARGET, &fields), Some(Point::Tool));
        assert_eq!(point_of("my_app", &fields), None);
        assert_eq!(point_of(TARGET, &fields[..1]), None);
        let bad = [Field {
            name: POINT_FIELD,
            value: Value::Str("toolz"),
        }];
        assert_eq!(point_of(TARGET, &bad), None);
        let not_str = [Field {
            name: POINT_FIELD,
            value: Value::U64(4),
        }];
        assert_eq!(point_of(TARGET, &not_str), None);
    }
}
