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
use crate::encode::json::write_value;
use crate::row::{Row, Value, CONTEXT_KEYS, CONTEXT_MAX_LEN};
use crate::text::uuid_text;

use super::audit::{self, Verdict};
use super::line::Line;
use super::pick::{as_i32, as_ip, as_str, Pick};
use super::{Scratch, Service};
use crate::level;

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

/// Appends `row` as one OCSF line (with its newline) to `out`.
pub(super) fn render(s: &mut Scratch, service: &Service, row: &Row<'_>, out: &mut Vec<u8>) {
    let mut used = std::mem::take(&mut s.used);
    let mut p = Pick::new(row, &mut used);
    let point = audit::point(row);
    let (class, (activity_id, activity)) = class_of(row);
    if let Some(point) = point {
        p.take_with(POINT_FIELD, |v| {
            (as_str(v) == Some(point.as_str())).then_some(())
        });
    }
    let svc = service.name_or_default();

    // What the classes place, read first so `metadata.profiles` can say
    // which profiles the event uses.
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
    // A permission's decision and policy, for `actor.authorizations`.
    let (decision, policy, policy_version) = match point {
        Some(Point::Permission) => {
            let decision = p.take_str(field::DECISION);
            let policy = p.take_str(field::POLICY_ID);
            let version = policy.and_then(|_| p.take_str(field::POLICY_VERSION));
            (decision, policy, version)
        }
        _ => (None, None, None),
    };
    // `ai_agent` needs a `uid` or a `name`; a version alone stays unmapped.
    let (agent_id, agent_name) = if api {
        (p.take_str(field::AGENT_ID), p.take_str(field::AGENT_NAME))
    } else {
        (None, None)
    };
    let has_agent = agent_id.is_some() || agent_name.is_some();
    let agent_version = has_agent
        .then(|| p.take_str(field::AGENT_VERSION))
        .flatten();
    // `ai_model` needs both its name and its provider.
    let model = match (p.peek(field::REQUEST_MODEL), p.peek(field::PROVIDER_NAME)) {
        (Some((m, Value::Str(name))), Some((v, Value::Str(provider)))) if api => {
            p.mark(m);
            p.mark(v);
            Some((name, provider))
        }
        _ => None,
    };
    // Token counts are `integer_t`: those beyond `i32` stay unmapped.
    let tokens = if api {
        [
            p.take_with(field::INPUT_TOKENS, as_i32),
            p.take_with(field::OUTPUT_TOKENS, as_i32),
            p.take_with(field::TOKENS_TOTAL, as_i32),
        ]
    } else {
        [None; 3]
    };
    let ai = has_agent || model.is_some() || tokens.iter().any(Option::is_some);
    let traced = api && trace.is_some();

    let verdict = match point {
        Some(_) => audit::verdict(row),
        None => Verdict::Unknown,
    };
    if let Some(word) = verdict.word() {
        for name in [field::OUTCOME, field::DECISION, field::STATUS] {
            if let Some((i, Value::Str(w))) = p.peek(name) {
                if w == word {
                    p.mark(i);
                    break;
                }
            }
        }
    }
    let (status_id, status) = match verdict {
        Verdict::Success(_) => (1, "Success"),
        Verdict::Failure(_) => (2, "Failure"),
        Verdict::Other(w) if !w.is_empty() => (99, w),
        Verdict::Unknown if point == Some(Point::Identity) => (1, "Success"),
        Verdict::Other(_) | Verdict::Unknown => (0, "Unknown"),
    };
    let status_code = match point {
        Some(Point::Result) => p.take_str(field::ERROR_TYPE),
        Some(Point::Permission) => p.take_str(field::REASON),
        _ => None,
    };

    let mut line = Line::new(out);
    line.open();
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
    line.int("time", row.ts_unix_nanos.div_euclid(1_000_000));
    let (severity_id, severity) = severity(row.level);
    line.int("severity_id", severity_id);
    line.str("severity", severity);
    line.int("status_id", status_id);
    line.str("status", status);
    line.opt_str("status_detail", verdict.word());
    line.opt_str("status_code", status_code);
    if !row.message.is_empty() {
        line.str("message", row.message);
    }

    line.object("metadata");
    line.str("version", OCSF_VERSION);
    line.object("product");
    line.str("name", PRODUCT);
    line.str("vendor_name", PRODUCT);
    line.str("version", env!("CARGO_PKG_VERSION"));
    line.close();
    line.array("profiles");
    if traced {
        line.str_item("trace");
    }
    if ai {
        line.str_item("ai_operation");
    }
    line.close_array();
    line.str("uid", &uuid_text(&row.id));
    if !row.target.is_empty() {
        line.str("log_provider", row.target);
    }
    line.opt_str("log_level", level::upper(row.level));
    line.opt_str("correlation_uid", trace);
    line.opt_str("tenant_uid", tenant);
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

    // The actor: who, in which session, from which app.
    let actor = |line: &mut Line<'_>| {
        line.object("actor");
        match (user, point) {
            (Some(u), _) => uid_object(line, "user", u),
            (None, Some(Point::Identity)) => {
                line.object("user");
                line.str("name", "unknown");
                line.close();
            }
            (None, _) => {}
        }
        if let Some(sess) = session {
            uid_object(line, "session", sess);
        }
        line.opt_str("app_uid", client);
        if user.is_none() && session.is_none() && client.is_none() && point != Some(Point::Identity)
        {
            line.str("app_name", svc);
        }
        if decision.is_some() || policy.is_some() {
            line.array("authorizations");
            line.open();
            line.opt_str("decision", decision);
            if let Some(policy) = policy {
                line.object("policy");
                line.str("uid", policy);
                line.opt_str("version", policy_version);
                line.close();
            }
            line.close();
            line.close_array();
        }
        line.close();
    };

    if class == AUTHENTICATION {
        match user {
            Some(u) => uid_object(&mut line, "user", u),
            None => {
                line.object("user");
                line.str("name", "unknown");
                line.close();
            }
        }
        actor(&mut line);
        if let Some(sess) = session {
            uid_object(&mut line, "session", sess);
        }
        line.object("service");
        line.str("name", svc);
        line.close();
        if let Some(ip) = ip {
            line.object("src_endpoint");
            line.str("ip", ip);
            line.close();
        }
        if let Some(method) = p.take_str(field::AUTH_METHOD) {
            let (id, caption) = auth_protocol(method);
            line.int("auth_protocol_id", id);
            line.str("auth_protocol", caption.unwrap_or(method));
        }
    } else if api {
        actor(&mut line);
        let operation = match point {
            Some(Point::Tool | Point::Permission) => p.take_str(field::TOOL_NAME),
            _ => None,
        }
        .or_else(|| p.take_str(field::OPERATION_NAME))
        .unwrap_or(point.map_or("log", Point::as_str));
        line.object("api");
        line.str("operation", operation);
        if let Some(call) = p.take_str(field::TOOL_CALL_ID) {
            uid_object(&mut line, "request", call);
        }
        if let Some(server) = p.take_str(field::MCP_SERVER_NAME) {
            line.object("service");
            line.str("name", server);
            line.close();
        }
        line.close();
        line.object("src_endpoint");
        match ip {
            Some(ip) => line.str("ip", ip),
            None => line.str("svc_name", svc),
        }
        line.close();
        if let Some(t) = trace {
            uid_object(&mut line, "trace", t);
        }
        let ai_model = |line: &mut Line<'_>| {
            if let Some((name, provider)) = model {
                line.object("ai_model");
                line.str("name", name);
                line.str("ai_provider", provider);
                line.close();
            }
        };
        if has_agent {
            line.object("ai_agent");
            line.opt_str("uid", agent_id);
            line.opt_str("name", agent_name);
            line.opt_str("version", agent_version);
            ai_model(&mut line);
            line.close();
        } else {
            ai_model(&mut line);
        }
        if tokens.iter().any(Option::is_some) {
            line.object("message_context");
            for (key, n) in ["prompt_tokens", "completion_tokens", "total_tokens"]
                .into_iter()
                .zip(tokens)
            {
                if let Some(n) = n {
                    line.int(key, n.into());
                }
            }
            line.object("service");
            line.str("name", svc);
            line.close();
            line.close();
        }
    }

    // Everything not placed.
    let before = line.checkpoint();
    line.object("unmapped");
    s.keys.clear();
    let mut any = false;
    let mut put = |line: &mut Line<'_>, s: &mut Scratch, key: &str, v: &Value<'_>| {
        if line.try_key(&mut s.keys, b"", true, |o| {
            crate::encode::json::write_str(o, key)
        }) {
            write_value(line.buf(), v);
            any = true;
        }
    };
    // Context ids the class did not place (the trace id always is).
    let placed_context = match class {
        c if c == AUTHENTICATION || c == API_ACTIVITY => [true, true, true, false, false, true],
        _ => [true, false, false, false, false, false],
    };
    for (i, id) in [trace, user, session, p.context(3), p.context(4), client]
        .into_iter()
        .enumerate()
    {
        if let (Some(id), false) = (id, placed_context[i]) {
            put(&mut line, s, CONTEXT_KEYS[i], &Value::Str(id));
        }
    }
    if let Some(span) = row.span_name {
        put(&mut line, s, "span_name", &Value::Str(span));
    }
    if let Some(file) = row.file {
        put(&mut line, s, "file", &Value::Str(file));
    }
    if let Some(n) = row.line {
        put(&mut line, s, "line", &Value::U64(n.into()));
    }
    if row.redacted > 0 {
        put(&mut line, s, "redacted", &Value::U64(row.redacted.into()));
    }
    for (at, f) in row.fields.iter().enumerate() {
        if !p.is_used(at) {
            put(&mut line, s, f.name, &f.value);
        }
    }
    if any {
        line.close();
    } else {
        line.rollback(before);
    }
    line.close();
    line.end_line();
    s.used = used;
}
