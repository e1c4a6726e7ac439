//! [`Format::Ocsf`](super::Format::Ocsf): each row as one event of the Open
//! Cybersecurity Schema Framework, [`OCSF_VERSION`].
//!
//! # Classes
//!
//! | row | class (`class_uid`) | category (`category_uid`) | `activity_id` | `type_uid` |
//! |---|---|---|---|---|
//! | identity point | Authentication (3002) | Identity & Access Management (3) | 1 Logon | 300201 |
//! | agent point | API Activity (6003) | Application Activity (6) | 99 Other, `activity_name` `agent` | 600399 |
//! | permission point | API Activity (6003) | Application Activity (6) | 99 Other, `activity_name` `permission` | 600399 |
//! | tool point | API Activity (6003) | Application Activity (6) | 99 Other, `activity_name` `tool` | 600399 |
//! | result point | API Activity (6003) | Application Activity (6) | 99 Other, `activity_name` `result` | 600399 |
//! | other row, level ERROR or FATAL (17..=24) | Application Error (6008) | Application Activity (6) | 1 General Error | 600801 |
//! | any other row | Base Event (0) | Uncategorized (0) | 99 Other, `activity_name` `log` | 99 |
//!
//! Why: an identity point records the authenticated caller of a request,
//! which is what Authentication's Logon reports (`user`, `auth_protocol`,
//! `src_endpoint`). Authorize Session (3003) would need the privileges,
//! groups or roles given to a session, which a policy decision does not
//! have; API Activity carries the decision in `actor.authorizations` and
//! the operation in `api.operation`, so the four other points share it and
//! one trace reads as one kind of event. API Activity's activities are
//! Create, Read, Update and Delete, which say nothing of an agent, a
//! decision, a tool call or a result, so each is Other (99), named by the
//! point. Application Lifecycle (6002) is about installing, starting and
//! stopping applications, not requests, so no point uses it. A plain log
//! row at ERROR is what Application Error is for; any other plain row has
//! no class of its own, and Base Event is OCSF's class for events "not
//! otherwise defined by the schema".
//!
//! `type_uid` is always `class_uid * 100 + activity_id`.
//!
//! # Attributes
//!
//! Every event: `activity_id`/`activity_name`, `category_uid`/
//! `category_name`, `class_uid`/`class_name`, `type_uid`/`type_name`,
//! `time` (epoch milliseconds), `severity_id`/`severity` (from the level:
//! TRACE…INFO 1 Informational, WARN 3 Medium, ERROR 4 High, FATAL 6
//! Fatal, outside 1..=24 0 Unknown), `status_id`/`status`, `message`
//! (when there is one), and `metadata`: `version` ([`OCSF_VERSION`]),
//! `product` (`name` and `vendor_name` `ringtrail`, `version` this
//! crate's), `profiles` (the profiles whose attributes the event uses:
//! `trace`, `ai_operation`, or none), `uid` (the row id), `log_provider`
//! (the target), `log_level`, `correlation_uid` (the trace id, on every
//! class), `tenant_uid` (`tenant.id`) and `is_truncated`.
//!
//! `status_id`: audit points take it from `outcome` (`success` 1 Success,
//! `failure` and `abandoned` 2 Failure), else `decision` (`allow`,
//! `approved` 1, `deny` 2), else `status` (`ok` 1, `error` 2); another
//! word is 99 Other with the word as `status`; none is 0 Unknown, except
//! an identity point, which is 1 Success. The word is also
//! `status_detail`; `error.type` (result) or `reason` (permission) is
//! `status_code`. Plain rows are 0 Unknown.
//!
//! Authentication (identity): `user` and `actor.user` (`uid`: the user id;
//! `name` `unknown` if the point has none, as `user` is required),
//! `actor.session` and `session` (`uid`: the session id), `actor.app_uid`
//! (`client_id`), `service.name` (the [renderer's service](super::Renderer::with_service_name)),
//! `src_endpoint.ip` (`source.ip`, when it is an IP address),
//! `auth_protocol_id`/`auth_protocol` (`auth.method`: `oauth` 6, `oidc`
//! 4, `saml` 5, `kerberos` 2, `ntlm` 1, `basic` 11, `ldap` 12, others 99
//! with the method as `auth_protocol`).
//!
//! API Activity (agent, permission, tool, result):
//! - `actor`: `user.uid`, `session.uid`, `app_uid` (`client_id`) when
//!   known, else `app_name` (the service); on a permission,
//!   `authorizations: [{decision, policy: {uid, version}}]`.
//! - `api.operation`: `gen_ai.tool.name` (tool, permission), else
//!   `gen_ai.operation.name`, else the point's name; `api.request.uid`
//!   (`gen_ai.tool.call.id`); `api.service.name` (`mcp.server.name`).
//! - `src_endpoint`: `ip` (`source.ip`) when known, else `svc_name` (the
//!   service: the agent in it is the caller).
//! - `trace.uid` (the trace id; profile `trace`).
//! - Profile `ai_operation`: `ai_agent` (`uid`, `name`, `version` from
//!   `agent.*`, and its `ai_model`), else `ai_model` (`name` from
//!   `gen_ai.request.model`, `ai_provider` from `gen_ai.provider.name`;
//!   only when both are known, as both are required), and
//!   `message_context` (`prompt_tokens`, `completion_tokens`,
//!   `total_tokens` from `gen_ai.usage.*` and `tokens.total`, with
//!   `service.name`).
//!
//! Everything else (other context ids, `span_name`, `file`, `line`,
//! `redacted`, fields not placed above or whose value does not have the
//! attribute's type) goes into `unmapped`, under its own name, unique,
//! first kept.

use crate::audit::contract::{field, Point, POINT_FIELD};
use crate::encode::json::{write_str, write_value};
use crate::level;
use crate::row::{Row, Value, CONTEXT_KEYS, CONTEXT_MAX_LEN};
use crate::text::uuid_text;

use super::audit::{self, Verdict};
use super::keys::KeySet;
use super::line::Line;
use super::pick::{as_i32, as_ip, as_str, Pick};
use super::{Scratch, Service};

/// The OCSF version written as `metadata.version`: the schema (1.9.0-dev)
/// whose classes, required attributes and enums this renderer follows.
pub const OCSF_VERSION: &str = "1.9.0-dev";

/// `metadata.product.name` and `vendor_name`.
pub(super) const PRODUCT: &str = "ringtrail";

/// An OCSF event class and its category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Class {
    /// `class_uid`.
    pub(super) uid: i64,
    /// `class_name`.
    pub(super) name: &'static str,
    /// `category_uid`.
    pub(super) category_uid: i64,
    /// `category_name`.
    pub(super) category_name: &'static str,
}

/// Authentication: the identity point.
pub(super) const AUTHENTICATION: Class = Class {
    uid: 3002,
    name: "Authentication",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
/// API Activity: the other four points.
pub(super) const API_ACTIVITY: Class = Class {
    uid: 6003,
    name: "API Activity",
    category_uid: 6,
    category_name: "Application Activity",
};
/// Application Error: plain rows at ERROR and above.
pub(super) const APPLICATION_ERROR: Class = Class {
    uid: 6008,
    name: "Application Error",
    category_uid: 6,
    category_name: "Application Activity",
};
/// Base Event: every other plain row.
pub(super) const BASE_EVENT: Class = Class {
    uid: 0,
    name: "Base Event",
    category_uid: 0,
    category_name: "Uncategorized",
};

/// `activity_id` 1 of Authentication.
const LOGON: (i64, &str) = (1, "Logon");
/// `activity_id` 1 of Application Error.
const GENERAL_ERROR: (i64, &str) = (1, "General Error");
/// `activity_id` 99, every class's.
const OTHER: (i64, &str) = (99, "Other");

/// The class a row is rendered as, with its activity id and caption.
pub(super) fn class_of(row: &Row<'_>) -> (Class, (i64, &'static str)) {
    match audit::point(row) {
        Some(Point::Identity) => (AUTHENTICATION, LOGON),
        Some(_) => (API_ACTIVITY, OTHER),
        None if level::range(row.level) >= Some(4) => (APPLICATION_ERROR, GENERAL_ERROR),
        None => (BASE_EVENT, OTHER),
    }
}

/// `severity_id` and its caption for a level.
pub(super) fn severity(level: i16) -> (i64, &'static str) {
    match level::range(level) {
        Some(0..=2) => (1, "Informational"),
        Some(3) => (3, "Medium"),
        Some(4) => (4, "High"),
        Some(_) => (6, "Fatal"),
        None => (0, "Unknown"),
    }
}

/// `auth_protocol_id` and caption for an `auth.method`, case-insensitive.
pub(super) fn auth_protocol(method: &str) -> (i64, Option<&'static str>) {
    const KNOWN: &[(&str, i64, &str)] = &[
        ("ntlm", 1, "NTLM"),
        ("kerberos", 2, "Kerberos"),
        ("digest", 3, "Digest"),
        ("oidc", 4, "OpenID"),
        ("openid", 4, "OpenID"),
        ("saml", 5, "SAML"),
        ("oauth", 6, "OAUTH 2.0"),
        ("oauth2", 6, "OAUTH 2.0"),
        ("basic", 11, "Basic Authentication"),
        ("ldap", 12, "LDAP"),
    ];
    KNOWN
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(method))
        .map_or((99, None), |&(_, id, caption)| (id, Some(caption)))
}

/// Writes `"key":{"uid":id}`.
fn uid_object(line: &mut Line<'_>, key: &str, id: &str) {
    line.object(key);
    line.str("uid", id);
    line.close();
}

/// Writes `"key":{"name":name}`.
fn name_object(line: &mut Line<'_>, key: &str, name: &str) {
    line.object(key);
    line.str("name", name);
    line.close();
}

/// Appends `row` as one OCSF line (with its newline) to `out`.
pub(super) fn render(s: &mut Scratch, service: &Service, row: &Row<'_>, out: &mut Vec<u8>) {
    let mut used = std::mem::take(&mut s.used);
    let mut p = Pick::new(row, &mut used);
    let point = audit::point(row);
    let (class, activity) = class_of(row);
    if let Some(point) = point {
        p.take_with(POINT_FIELD, |v| {
            (as_str(v) == Some(point.as_str())).then_some(())
        });
    }
    let svc = service.name_or_default();
    let placed = Placed::take(&mut p, point, class);
    let status = EventStatus::take(&mut p, row, point);

    let mut line = Line::new(out);
    line.open();
    write_classification(&mut line, class, activity, point);
    line.int("time", row.ts_unix_nanos.div_euclid(1_000_000));
    write_severity(&mut line, row.level);
    write_status(&mut line, &status);
    if !row.message.is_empty() {
        line.str("message", row.message);
    }
    write_metadata(&mut line, row, class, &placed);
    if class == AUTHENTICATION {
        write_authentication(&mut line, &mut p, &placed, svc);
    } else if class == API_ACTIVITY {
        write_api_activity(&mut line, &mut p, &placed, point, svc);
    }
    write_unmapped(&mut line, &mut s.keys, &mut p, class, &placed);
    line.close();
    line.end_line();
    s.used = used;
}

/// What the classes place, read before anything is written so
/// `metadata.profiles` can say which profiles the event uses.
struct Placed<'a> {
    /// The trace id: `metadata.correlation_uid`, `trace.uid`.
    trace: Option<&'a str>,
    /// The user id: `user.uid`, `actor.user.uid`.
    user: Option<&'a str>,
    /// The session id: `session.uid`, `actor.session.uid`.
    session: Option<&'a str>,
    /// The client id: `actor.app_uid`.
    client: Option<&'a str>,
    /// `tenant.id`: `metadata.tenant_uid`.
    tenant: Option<&'a str>,
    /// `source.ip`, when it is an IP address: `src_endpoint.ip`.
    ip: Option<&'a str>,
    /// A permission's decision and policy, for `actor.authorizations`.
    authorization: Authorization<'a>,
    /// `ai_agent`, when the point names one.
    agent: Option<Agent<'a>>,
    /// `ai_model`: its name and its provider.
    model: Option<(&'a str, &'a str)>,
    /// `message_context`'s prompt, completion and total token counts.
    tokens: [Option<i32>; 3],
}

/// A permission's decision and policy (`actor.authorizations`).
struct Authorization<'a> {
    decision: Option<&'a str>,
    policy: Option<&'a str>,
    policy_version: Option<&'a str>,
}

/// `ai_agent`: a `uid` or a `name`, and a version.
struct Agent<'a> {
    uid: Option<&'a str>,
    name: Option<&'a str>,
    version: Option<&'a str>,
}

impl<'a> Placed<'a> {
    /// Takes from `p` what the class of the row places, in this order
    /// (which decides, of two fields of one name, the one placed).
    fn take(p: &mut Pick<'_, 'a>, point: Option<Point>, class: Class) -> Placed<'a> {
        let trace = p.context(0);
        let user = p.context(1);
        let session = p.context(2);
        let client = p.context(5);
        let tenant = p.take_str(field::TENANT_ID);
        let api = class == API_ACTIVITY;
        let ip = if api || class == AUTHENTICATION {
            p.take_with(field::SOURCE_IP, as_ip)
        } else {
            None
        };
        let authorization = Authorization::take(p, point);
        let (agent, model, tokens) = if api {
            (Agent::take(p), take_model(p), take_tokens(p))
        } else {
            (None, None, [None; 3])
        };
        Placed {
            trace,
            user,
            session,
            client,
            tenant,
            ip,
            authorization,
            agent,
            model,
            tokens,
        }
    }

    /// True when the event uses profile `ai_operation`.
    fn ai(&self) -> bool {
        self.agent.is_some() || self.model.is_some() || self.tokens.iter().any(Option::is_some)
    }
}

impl<'a> Authorization<'a> {
    /// A permission's `decision`, `policy.id` and (with a policy)
    /// `policy.version`; nothing for the other points.
    fn take(p: &mut Pick<'_, 'a>, point: Option<Point>) -> Authorization<'a> {
        if point != Some(Point::Permission) {
            return Authorization {
                decision: None,
                policy: None,
                policy_version: None,
            };
        }
        let decision = p.take_str(field::DECISION);
        let policy = p.take_str(field::POLICY_ID);
        let policy_version = policy.and_then(|_| p.take_str(field::POLICY_VERSION));
        Authorization {
            decision,
            policy,
            policy_version,
        }
    }
}

impl<'a> Agent<'a> {
    /// `agent.id` and `agent.name`, and `agent.version` with either:
    /// `ai_agent` needs a `uid` or a `name`, a version alone stays unmapped.
    fn take(p: &mut Pick<'_, 'a>) -> Option<Agent<'a>> {
        let uid = p.take_str(field::AGENT_ID);
        let name = p.take_str(field::AGENT_NAME);
        (uid.is_some() || name.is_some()).then(|| Agent {
            uid,
            name,
            version: p.take_str(field::AGENT_VERSION),
        })
    }
}

/// `ai_model`'s name and provider, taken only when both are known (both
/// are required).
fn take_model<'a>(p: &mut Pick<'_, 'a>) -> Option<(&'a str, &'a str)> {
    match (p.peek(field::REQUEST_MODEL), p.peek(field::PROVIDER_NAME)) {
        (Some((m, Value::Str(name))), Some((v, Value::Str(provider)))) => {
            p.mark(m);
            p.mark(v);
            Some((name, provider))
        }
        _ => None,
    }
}

/// The token counts, `integer_t`: those beyond `i32` stay unmapped.
fn take_tokens(p: &mut Pick<'_, '_>) -> [Option<i32>; 3] {
    [
        p.take_with(field::INPUT_TOKENS, as_i32),
        p.take_with(field::OUTPUT_TOKENS, as_i32),
        p.take_with(field::TOKENS_TOTAL, as_i32),
    ]
}

/// `status_id`, `status`, `status_detail` and `status_code`.
struct EventStatus<'a> {
    /// `status_id`.
    id: i64,
    /// `status`.
    caption: &'a str,
    /// `status_detail`: the verdict's word.
    detail: Option<&'a str>,
    /// `status_code`: `error.type` (result) or `reason` (permission).
    code: Option<&'a str>,
}

impl<'a> EventStatus<'a> {
    /// A point's verdict (placing the field whose word it is) and status
    /// code; plain rows are 0 Unknown.
    fn take(p: &mut Pick<'_, 'a>, row: &Row<'a>, point: Option<Point>) -> EventStatus<'a> {
        let verdict = match point {
            Some(_) => audit::verdict(row),
            None => Verdict::Unknown,
        };
        if let Some(word) = verdict.word() {
            place_verdict_word(p, word);
        }
        let (id, caption) = match verdict {
            Verdict::Success(_) => (1, "Success"),
            Verdict::Failure(_) => (2, "Failure"),
            Verdict::Other(w) if !w.is_empty() => (99, w),
            Verdict::Unknown if point == Some(Point::Identity) => (1, "Success"),
            Verdict::Other(_) | Verdict::Unknown => (0, "Unknown"),
        };
        let code = match point {
            Some(Point::Result) => p.take_str(field::ERROR_TYPE),
            Some(Point::Permission) => p.take_str(field::REASON),
            _ => None,
        };
        EventStatus {
            id,
            caption,
            detail: verdict.word(),
            code,
        }
    }
}

/// Places the field the verdict's `word` came from: of the first unplaced
/// `outcome`, `decision` and `status` fields, in that order, the first that
/// is `word` as a string.
fn place_verdict_word(p: &mut Pick<'_, '_>, word: &str) {
    for name in [field::OUTCOME, field::DECISION, field::STATUS] {
        if let Some((i, Value::Str(w))) = p.peek(name) {
            if w == word {
                p.mark(i);
                break;
            }
        }
    }
}

/// The Classes table: `activity_id`/`activity_name`,
/// `category_uid`/`category_name`, `class_uid`/`class_name` and
/// `type_uid`/`type_name`.
fn write_classification(
    line: &mut Line<'_>,
    class: Class,
    (activity_id, activity): (i64, &str),
    point: Option<Point>,
) {
    line.int("activity_id", activity_id);
    line.str(
        "activity_name",
        match (activity_id, point) {
            (99, Some(point)) => point.as_str(),
            (99, None) => "log",
            _ => activity,
        },
    );
    line.int("category_uid", class.category_uid);
    line.str("category_name", class.category_name);
    line.int("class_uid", class.uid);
    line.str("class_name", class.name);
    line.int("type_uid", class.uid * 100 + activity_id);
    line.key("type_name");
    let out = line.buf();
    out.push(b'"');
    out.extend_from_slice(class.name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(activity.as_bytes());
    out.push(b'"');
}

/// `severity_id`/`severity`, from the level.
fn write_severity(line: &mut Line<'_>, level: i16) {
    let (id, caption) = severity(level);
    line.int("severity_id", id);
    line.str("severity", caption);
}

/// `status_id`/`status`, and `status_detail` and `status_code` when known.
fn write_status(line: &mut Line<'_>, status: &EventStatus<'_>) {
    line.int("status_id", status.id);
    line.str("status", status.caption);
    line.opt_str("status_detail", status.detail);
    line.opt_str("status_code", status.code);
}

/// `metadata`: the schema version, `product`, `profiles`, the row id,
/// target and level, the trace and tenant ids, and `is_truncated`.
fn write_metadata(line: &mut Line<'_>, row: &Row<'_>, class: Class, placed: &Placed<'_>) {
    line.object("metadata");
    line.str("version", OCSF_VERSION);
    write_product(line);
    write_profiles(
        line,
        class == API_ACTIVITY && placed.trace.is_some(),
        placed.ai(),
    );
    line.str("uid", &uuid_text(&row.id));
    if !row.target.is_empty() {
        line.str("log_provider", row.target);
    }
    line.opt_str("log_level", level::upper(row.level));
    line.opt_str("correlation_uid", placed.trace);
    line.opt_str("tenant_uid", placed.tenant);
    let truncated = row.truncated
        || row
            .context
            .iter()
            .flatten()
            .any(|id| id.len() > CONTEXT_MAX_LEN);
    if truncated {
        line.bool("is_truncated", true);
    }
    line.close();
}

/// `metadata.product`: ringtrail, this crate's version.
fn write_product(line: &mut Line<'_>) {
    line.object("product");
    line.str("name", PRODUCT);
    line.str("vendor_name", PRODUCT);
    line.str("version", env!("CARGO_PKG_VERSION"));
    line.close();
}

/// `metadata.profiles`: `trace` and `ai_operation` when the event uses
/// them.
fn write_profiles(line: &mut Line<'_>, traced: bool, ai: bool) {
    line.array("profiles");
    if traced {
        line.str_item("trace");
    }
    if ai {
        line.str_item("ai_operation");
    }
    line.close_array();
}

/// Authentication (identity point): `user`, `actor`, `session`,
/// `service`, `src_endpoint` and `auth_protocol_id`/`auth_protocol`.
fn write_authentication(line: &mut Line<'_>, p: &mut Pick<'_, '_>, placed: &Placed<'_>, svc: &str) {
    write_user(line, placed.user);
    write_actor(line, placed, Some(Point::Identity), svc);
    if let Some(sess) = placed.session {
        uid_object(line, "session", sess);
    }
    name_object(line, "service", svc);
    write_src_endpoint(line, placed.ip, None);
    write_auth_protocol(line, p);
}

/// API Activity (agent, permission, tool, result points): `actor`,
/// `api`, `src_endpoint`, `trace`, `ai_agent` or `ai_model`, and
/// `message_context`.
fn write_api_activity(
    line: &mut Line<'_>,
    p: &mut Pick<'_, '_>,
    placed: &Placed<'_>,
    point: Option<Point>,
    svc: &str,
) {
    write_actor(line, placed, point, svc);
    write_api(line, p, point);
    write_src_endpoint(line, placed.ip, Some(svc));
    if let Some(t) = placed.trace {
        uid_object(line, "trace", t);
    }
    match &placed.agent {
        Some(agent) => write_ai_agent(line, agent, placed.model),
        None => write_ai_model(line, placed.model),
    }
    write_message_context(line, placed.tokens, svc);
}

/// `user`: `uid` the user id, or `name` `unknown` without one (as
/// Authentication requires a `user`).
fn write_user(line: &mut Line<'_>, user: Option<&str>) {
    match user {
        Some(u) => uid_object(line, "user", u),
        None => {
            line.object("user");
            line.str("name", "unknown");
            line.close();
        }
    }
}

/// `actor`: who, in which session, from which app; on a permission, its
/// `authorizations`.
fn write_actor(line: &mut Line<'_>, placed: &Placed<'_>, point: Option<Point>, svc: &str) {
    let identity = point == Some(Point::Identity);
    line.object("actor");
    if placed.user.is_some() || identity {
        write_user(line, placed.user);
    }
    if let Some(sess) = placed.session {
        uid_object(line, "session", sess);
    }
    line.opt_str("app_uid", placed.client);
    if placed.user.is_none() && placed.session.is_none() && placed.client.is_none() && !identity {
        line.str("app_name", svc);
    }
    write_authorizations(line, &placed.authorization);
    line.close();
}

/// `actor.authorizations`: `[{decision, policy: {uid, version}}]`, when
/// there is a decision or a policy.
fn write_authorizations(line: &mut Line<'_>, authorization: &Authorization<'_>) {
    if authorization.decision.is_none() && authorization.policy.is_none() {
        return;
    }
    line.array("authorizations");
    line.open();
    line.opt_str("decision", authorization.decision);
    if let Some(policy) = authorization.policy {
        line.object("policy");
        line.str("uid", policy);
        line.opt_str("version", authorization.policy_version);
        line.close();
    }
    line.close();
    line.close_array();
}

/// `api`: `operation`, `request.uid` and `service.name`.
fn write_api(line: &mut Line<'_>, p: &mut Pick<'_, '_>, point: Option<Point>) {
    let operation = match point {
        Some(Point::Tool | Point::Permission) => p.take_str(field::TOOL_NAME),
        _ => None,
    }
    .or_else(|| p.take_str(field::OPERATION_NAME))
    .unwrap_or(point.map_or("log", Point::as_str));
    line.object("api");
    line.str("operation", operation);
    if let Some(call) = p.take_str(field::TOOL_CALL_ID) {
        uid_object(line, "request", call);
    }
    if let Some(server) = p.take_str(field::MCP_SERVER_NAME) {
        name_object(line, "service", server);
    }
    line.close();
}

/// `src_endpoint`: `ip` when known, else `svc_name` when given, else
/// nothing.
fn write_src_endpoint(line: &mut Line<'_>, ip: Option<&str>, svc_name: Option<&str>) {
    let (key, value) = match (ip, svc_name) {
        (Some(ip), _) => ("ip", ip),
        (None, Some(svc)) => ("svc_name", svc),
        (None, None) => return,
    };
    line.object("src_endpoint");
    line.str(key, value);
    line.close();
}

/// `auth_protocol_id`/`auth_protocol`, from `auth.method`.
fn write_auth_protocol(line: &mut Line<'_>, p: &mut Pick<'_, '_>) {
    if let Some(method) = p.take_str(field::AUTH_METHOD) {
        let (id, caption) = auth_protocol(method);
        line.int("auth_protocol_id", id);
        line.str("auth_protocol", caption.unwrap_or(method));
    }
}

/// `ai_agent`: `uid`, `name`, `version`, and its `ai_model`.
fn write_ai_agent(line: &mut Line<'_>, agent: &Agent<'_>, model: Option<(&str, &str)>) {
    line.object("ai_agent");
    line.opt_str("uid", agent.uid);
    line.opt_str("name", agent.name);
    line.opt_str("version", agent.version);
    write_ai_model(line, model);
    line.close();
}

/// `ai_model`: `name` and `ai_provider`, when both are known.
fn write_ai_model(line: &mut Line<'_>, model: Option<(&str, &str)>) {
    if let Some((name, provider)) = model {
        line.object("ai_model");
        line.str("name", name);
        line.str("ai_provider", provider);
        line.close();
    }
}

/// `message_context`: the token counts there are, and `service.name`;
/// nothing without a count.
fn write_message_context(line: &mut Line<'_>, tokens: [Option<i32>; 3], svc: &str) {
    if tokens.iter().all(Option::is_none) {
        return;
    }
    line.object("message_context");
    for (key, n) in ["prompt_tokens", "completion_tokens", "total_tokens"]
        .into_iter()
        .zip(tokens)
    {
        if let Some(n) = n {
            line.int(key, n.into());
        }
    }
    name_object(line, "service", svc);
    line.close();
}

/// `unmapped`: everything not placed, under its own name, unique, first
/// kept; left out when there is nothing.
fn write_unmapped(
    line: &mut Line<'_>,
    keys: &mut KeySet,
    p: &mut Pick<'_, '_>,
    class: Class,
    placed: &Placed<'_>,
) {
    let row = p.row;
    let before = line.checkpoint();
    line.object("unmapped");
    keys.clear();
    let mut any = unmapped_context(line, keys, p, class, placed);
    if let Some(span) = row.span_name {
        any |= unmapped_entry(line, keys, "span_name", &Value::Str(span));
    }
    if let Some(file) = row.file {
        any |= unmapped_entry(line, keys, "file", &Value::Str(file));
    }
    if let Some(n) = row.line {
        any |= unmapped_entry(line, keys, "line", &Value::U64(n.into()));
    }
    if row.redacted > 0 {
        any |= unmapped_entry(line, keys, "redacted", &Value::U64(row.redacted.into()));
    }
    for (at, f) in row.fields.iter().enumerate() {
        if !p.is_used(at) {
            any |= unmapped_entry(line, keys, f.name, &f.value);
        }
    }
    line.close_or_rollback(before, any);
}

/// The context ids the class did not place (the trace id always is),
/// into `unmapped`: true when one was written.
fn unmapped_context(
    line: &mut Line<'_>,
    keys: &mut KeySet,
    p: &mut Pick<'_, '_>,
    class: Class,
    placed: &Placed<'_>,
) -> bool {
    let placed_context = match class {
        c if c == AUTHENTICATION || c == API_ACTIVITY => [true, true, true, false, false, true],
        _ => [true, false, false, false, false, false],
    };
    let ids = [
        placed.trace,
        placed.user,
        placed.session,
        p.context(3),
        p.context(4),
        placed.client,
    ];
    let mut any = false;
    for (i, id) in ids.into_iter().enumerate() {
        if let (Some(id), false) = (id, placed_context[i]) {
            any |= unmapped_entry(line, keys, CONTEXT_KEYS[i], &Value::Str(id));
        }
    }
    any
}

/// `"key":value` in `unmapped`, unless `key` is there already: true when
/// it was written.
fn unmapped_entry(line: &mut Line<'_>, keys: &mut KeySet, key: &str, v: &Value<'_>) -> bool {
    if line.try_key(keys, b"", true, |o| write_str(o, key)) {
        write_value(line.buf(), v);
        true
    } else {
        false
    }
}
