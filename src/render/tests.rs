//! Tests over every format: random and adversarial rows (every line one
//! line of valid JSON, the schema's shapes and types), and the schema
//! facts the renderers rely on, written here as constants so they run on
//! any checkout; when `../shared/reference` is there, they are also
//! checked against the ECS and OCSF files themselves.

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::Value as J;

use super::ecs::{EcsType, MAPPED, WRITTEN};
use super::ocsf::{
    self, Class, API_ACTIVITY, APPLICATION_ERROR, AUTHENTICATION, BASE_EVENT, OCSF_VERSION,
};
use super::{Format, Renderer, ECS_VERSION};
use crate::audit::contract::field;
use crate::ids::Xorshift;
use crate::row::{Field, Row, Value, CONTEXT_LEN};

// ---------------------------------------------------------------------
// Reading the output back

/// Renders `row` in `format` and checks the line itself: one `\n`, at the
/// end, no raw control character, valid UTF-8. Returns the text without
/// the newline.
fn line(r: &mut Renderer, row: &Row<'_>) -> String {
    let mut out = b"previous line\n".to_vec();
    r.render(row, &mut out);
    let out = out.split_off(14);
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(text.ends_with('\n'), "{} line without newline", r.format());
    let body = &text[..text.len() - 1];
    assert!(
        !body.bytes().any(|b| b < 0x20),
        "{}: a raw control character in {body:.200}",
        r.format()
    );
    body.to_owned()
}

fn parse(text: &str) -> J {
    let j: J = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text:.300}"));
    assert!(j.is_object(), "{text:.100}");
    j
}

/// Every object key of `text`, as (object number, key), objects numbered
/// in the order they open (0 is the top level).
fn keys(text: &str) -> Vec<(usize, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut stack: Vec<Option<usize>> = Vec::new();
    let mut objects = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                stack.push(Some(objects));
                objects += 1;
            }
            b'[' => stack.push(None),
            b'}' | b']' => {
                stack.pop();
            }
            b'"' => {
                let start = i;
                i += 1;
                while b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if b.get(i + 1) == Some(&b':') {
                    let key: String = serde_json::from_str(&text[start..=i]).unwrap();
                    let object = stack.last().copied().flatten().expect("a key in an object");
                    out.push((object, key));
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Keys of the top-level object, in order.
fn top_keys(text: &str) -> Vec<String> {
    keys(text)
        .into_iter()
        .filter(|(o, _)| *o == 0)
        .map(|(_, k)| k)
        .collect()
}

fn assert_unique_keys(text: &str) {
    let mut seen = HashSet::new();
    for (o, k) in keys(text) {
        assert!(
            seen.insert((o, k.clone())),
            "repeated key {k:?} in {text:.300}"
        );
    }
}

// ---------------------------------------------------------------------
// Facts of ECS 9.4 (ecs_flat-9.4.0.yml) and the ecs-logging spec

/// ECS field → type, for every field the renderer may write.
const ECS_TYPES: &[(&str, &str)] = &[
    ("@timestamp", "date"),
    ("log.level", "keyword"),
    ("message", "match_only_text"),
    ("ecs.version", "keyword"),
    ("log.logger", "keyword"),
    ("log.origin.file.name", "keyword"),
    ("log.origin.file.line", "long"),
    ("event.id", "keyword"),
    ("event.severity", "long"),
    ("event.kind", "keyword"),
    ("event.category", "keyword"),
    ("event.type", "keyword"),
    ("event.action", "keyword"),
    ("event.outcome", "keyword"),
    ("event.dataset", "keyword"),
    ("event.duration", "long"),
    ("event.reason", "keyword"),
    ("service.name", "keyword"),
    ("service.version", "keyword"),
    ("labels", "object"),
    ("trace.id", "keyword"),
    ("user.id", "keyword"),
    ("user.name", "keyword"),
    ("error.message", "match_only_text"),
    ("error.type", "keyword"),
    ("error.code", "keyword"),
    ("error.id", "keyword"),
    ("error.stack_trace", "wildcard"),
    ("rule.id", "keyword"),
    ("rule.version", "keyword"),
    ("organization.id", "keyword"),
    ("source.ip", "ip"),
    ("gen_ai.agent.id", "keyword"),
    ("gen_ai.agent.name", "keyword"),
    ("gen_ai.agent.description", "keyword"),
    ("gen_ai.system", "keyword"),
    ("gen_ai.operation.name", "keyword"),
    ("gen_ai.request.model", "keyword"),
    ("gen_ai.response.model", "keyword"),
    ("gen_ai.response.id", "keyword"),
    ("gen_ai.tool.name", "keyword"),
    ("gen_ai.tool.call.id", "keyword"),
    ("gen_ai.tool.type", "keyword"),
    ("gen_ai.output.type", "keyword"),
    ("gen_ai.usage.input_tokens", "integer"),
    ("gen_ai.usage.output_tokens", "integer"),
    ("gen_ai.request.max_tokens", "integer"),
    ("gen_ai.request.seed", "integer"),
    ("gen_ai.request.choice.count", "integer"),
    ("gen_ai.request.temperature", "double"),
    ("gen_ai.request.top_p", "double"),
    ("gen_ai.request.top_k", "double"),
    ("gen_ai.request.frequency_penalty", "double"),
    ("gen_ai.request.presence_penalty", "double"),
];

/// ECS fields that are arrays of their type (`normalize: array`).
const ECS_ARRAYS: &[&str] = &["event.category", "event.type"];

/// Allowed values the renderer writes.
const ECS_KIND: &str = "event";
const ECS_OUTCOMES: &[&str] = &["success", "failure", "unknown"];
/// `event.category` → the `event.type`s ECS expects with it, of those used.
const ECS_CATEGORY_TYPES: &[(&str, &[&str])] = &[
    ("authentication", &["start"]),
    ("api", &["info", "allowed", "denied", "access", "end"]),
];
/// ecs-logging: the keys that come first, in order (`message` when there
/// is one), and the keys that must be top-level dotted names.
const ECS_LOGGING_ORDER: &[&str] = &["@timestamp", "log.level", "message"];
const ECS_LOGGING_DOTTED: &[&str] = &["log.level", "ecs.version"];
/// ecs-logging: characters label keys must not have.
const ECS_LABEL_FORBIDDEN: &[char] = &['.', '*', '\\'];

fn ecs_type(name: &str) -> Option<&'static str> {
    ECS_TYPES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Checks one ECS line against the facts above.
fn check_ecs(text: &str, row: &Row<'_>) {
    assert_unique_keys(text);
    let j = parse(text);
    let top = top_keys(text);
    let mut want: Vec<&str> = ECS_LOGGING_ORDER.to_vec();
    if row.message.is_empty() {
        want.retain(|k| *k != "message");
    }
    assert_eq!(&top[..want.len()], want.as_slice(), "{text:.300}");
    for k in ECS_LOGGING_DOTTED {
        assert!(j.get(*k).is_some_and(J::is_string), "{k} in {text:.300}");
    }
    assert_eq!(j["ecs.version"], ECS_VERSION);
    for (key, value) in j.as_object().unwrap() {
        let ty = ecs_type(key).unwrap_or_else(|| panic!("{key} is not a field we checked"));
        let values: Vec<&J> = if ECS_ARRAYS.contains(&key.as_str()) {
            value.as_array().expect("an array").iter().collect()
        } else {
            vec![value]
        };
        for v in values {
            let ok = match ty {
                "keyword" | "match_only_text" | "wildcard" => v.is_string(),
                "date" => v
                    .as_str()
                    .is_some_and(|s| s.ends_with('Z') && s.len() == 27),
                "long" => v.is_i64(),
                "integer" => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                "double" => v.as_f64().is_some_and(f64::is_finite),
                "ip" => v
                    .as_str()
                    .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
                "object" => v.as_object().is_some_and(|labels| {
                    labels.iter().all(|(k, v)| {
                        v.is_string() && !k.contains(ECS_LABEL_FORBIDDEN) && !k.trim().is_empty()
                    })
                }),
                other => panic!("type {other}"),
            };
            assert!(ok, "{key} ({ty}) = {v:.100}");
        }
    }
    if let Some(kind) = j.get("event.kind") {
        assert_eq!(kind, ECS_KIND);
        let category = j["event.category"][0].as_str().unwrap();
        let types = ECS_CATEGORY_TYPES
            .iter()
            .find(|(c, _)| *c == category)
            .unwrap()
            .1;
        assert!(types.contains(&j["event.type"][0].as_str().unwrap()));
        assert!(ECS_OUTCOMES.contains(&j["event.outcome"].as_str().unwrap()));
    }
}

// ---------------------------------------------------------------------
// Facts of OCSF 1.9.0-dev (ocsf-schema/)

/// Attributes base_event.json marks required.
const OCSF_BASE_REQUIRED: &[&str] = &[
    "activity_id",
    "category_uid",
    "class_uid",
    "metadata",
    "severity_id",
    "time",
    "type_uid",
];

/// What the schema says of one class the renderer uses.
struct ClassFacts {
    class: Class,
    /// The class's file under `events/`.
    file: &'static str,
    /// Required attributes besides [`OCSF_BASE_REQUIRED`], inherited ones
    /// included.
    required: &'static [&'static str],
    /// `constraints.at_least_one`.
    at_least_one: &'static [&'static str],
    /// The `activity_id`s used, with their captions.
    activities: &'static [(i64, &'static str)],
    /// Profiles the class (and its parents) declare.
    profiles: &'static [&'static str],
}

const BASE_PROFILES: [&str; 6] = [
    "cloud",
    "datetime",
    "host",
    "osint",
    "record_integrity",
    "security_control",
];

const OCSF_CLASSES: &[ClassFacts] = &[
    ClassFacts {
        class: AUTHENTICATION,
        file: "iam/authentication.json",
        required: &["user"],
        at_least_one: &["service", "dst_endpoint"],
        activities: &[(1, "Logon")],
        profiles: &[
            "cloud",
            "datetime",
            "host",
            "osint",
            "record_integrity",
            "security_control",
            "ai_operation",
        ],
    },
    ClassFacts {
        class: API_ACTIVITY,
        file: "application/api_activity.json",
        required: &["actor", "api", "src_endpoint"],
        at_least_one: &[],
        activities: &[(99, "Other")],
        profiles: &[
            "cloud",
            "datetime",
            "host",
            "osint",
            "record_integrity",
            "security_control",
            "ai_operation",
            "trace",
        ],
    },
    ClassFacts {
        class: APPLICATION_ERROR,
        file: "application/application_error.json",
        required: &[],
        at_least_one: &[],
        activities: &[(1, "General Error")],
        profiles: &[
            "cloud",
            "datetime",
            "host",
            "osint",
            "record_integrity",
            "security_control",
            "ai_operation",
        ],
    },
    ClassFacts {
        class: BASE_EVENT,
        file: "base_event.json",
        required: &[],
        at_least_one: &[],
        activities: &[(99, "Other")],
        profiles: &BASE_PROFILES,
    },
];

/// Objects the renderer writes: (object, attribute that holds it, required
/// attributes, `at_least_one`). Inherited ones included (`_entity` gives
/// `at_least_one: [name, uid]` to those without their own).
#[allow(clippy::type_complexity)]
const OCSF_OBJECTS: &[(&str, &[&str], &[&str], &[&str])] = &[
    ("metadata", &["metadata"], &["product", "version"], &[]),
    ("product", &["product"], &[], &["name", "uid"]),
    ("user", &["user"], &[], &["account", "name", "uid"]),
    (
        "actor",
        &["actor"],
        &[],
        &[
            "process",
            "user",
            "iam_role",
            "invoked_by",
            "session",
            "app_name",
            "app_uid",
        ],
    ),
    ("session", &["session"], &[], &[]),
    ("service", &["service"], &[], &["name", "uid"]),
    ("api", &["api"], &["operation"], &[]),
    ("request", &["request"], &["uid"], &[]),
    (
        "network_endpoint",
        &["src_endpoint"],
        &[],
        &[
            "ip",
            "uid",
            "name",
            "hostname",
            "svc_name",
            "instance_uid",
            "interface_uid",
            "interface_name",
            "domain",
        ],
    ),
    ("authorization", &["authorizations"], &[], &[]),
    ("policy", &["policy"], &[], &["name", "type", "uid"]),
    ("trace", &["trace"], &["uid"], &[]),
    (
        "ai_model",
        &["ai_model"],
        &["name", "ai_provider"],
        &["name", "uid"],
    ),
    ("ai_agent", &["ai_agent"], &[], &["name", "uid"]),
    (
        "message_context",
        &["message_context"],
        &[],
        &["application", "service"],
    ),
];

/// Profiles the renderer declares, and the attributes each adds (none is
/// required by either).
const OCSF_PROFILES: &[(&str, &[&str])] = &[
    ("trace", &["trace"]),
    ("ai_operation", &["ai_agent", "ai_model", "message_context"]),
];

/// `severity_id` and `status_id` enums (dictionary.json and base_event).
const OCSF_SEVERITIES: &[(i64, &str)] = &[
    (0, "Unknown"),
    (1, "Informational"),
    (2, "Low"),
    (3, "Medium"),
    (4, "High"),
    (5, "Critical"),
    (6, "Fatal"),
    (99, "Other"),
];
const OCSF_STATUSES: &[(i64, &str)] = &[
    (0, "Unknown"),
    (1, "Success"),
    (2, "Failure"),
    (99, "Other"),
];
/// `auth_protocol_id` values the renderer writes.
const OCSF_AUTH_PROTOCOLS: &[(i64, &str)] = &[
    (1, "NTLM"),
    (2, "Kerberos"),
    (3, "Digest"),
    (4, "OpenID"),
    (5, "SAML"),
    (6, "OAUTH 2.0"),
    (11, "Basic Authentication"),
    (12, "LDAP"),
    (99, "Other"),
];
/// Attributes of type `integer_t` (32-bit) the renderer writes numbers to.
const OCSF_INTEGERS: &[&str] = &["prompt_tokens", "completion_tokens", "total_tokens"];

fn facts(class_uid: i64) -> &'static ClassFacts {
    OCSF_CLASSES
        .iter()
        .find(|f| f.class.uid == class_uid)
        .unwrap_or_else(|| panic!("class {class_uid} is not one we checked"))
}

/// Checks an object's required and `at_least_one` attributes wherever
/// an attribute named like one of `OCSF_OBJECTS` holds it.
fn check_objects(j: &J, path: &str) {
    let Some(map) = j.as_object() else {
        if let Some(items) = j.as_array() {
            for item in items {
                check_objects(item, path);
            }
        }
        return;
    };
    for (key, v) in map {
        let at = format!("{path}.{key}");
        if key != "unmapped" {
            if let Some((_, _, required, any)) =
                OCSF_OBJECTS.iter().find(|o| o.1.contains(&key.as_str()))
            {
                let objects: Vec<&J> = match v.as_array() {
                    Some(a) => a.iter().collect(),
                    None => vec![v],
                };
                for o in objects {
                    let o = o.as_object().unwrap_or_else(|| panic!("{at} is an object"));
                    for r in *required {
                        assert!(o.contains_key(*r), "{at} needs {r}");
                    }
                    if !any.is_empty() {
                        assert!(
                            any.iter().any(|a| o.contains_key(*a)),
                            "{at} needs one of {any:?}"
                        );
                    }
                }
            }
            check_objects(v, &at);
        }
    }
}

/// Checks one OCSF line against the facts above.
fn check_ocsf(text: &str) -> J {
    assert_unique_keys(text);
    let j = parse(text);
    for k in OCSF_BASE_REQUIRED {
        assert!(j.get(*k).is_some(), "{k} missing in {text:.300}");
    }
    let int = |k: &str| j[k].as_i64().unwrap_or_else(|| panic!("{k} is an integer"));
    let (class_uid, activity_id) = (int("class_uid"), int("activity_id"));
    let f = facts(class_uid);
    assert_eq!(int("category_uid"), f.class.category_uid);
    assert_eq!(j["class_name"], f.class.name);
    assert_eq!(j["category_name"], f.class.category_name);
    let caption = f
        .activities
        .iter()
        .find(|a| a.0 == activity_id)
        .expect("a known activity")
        .1;
    assert_eq!(int("type_uid"), class_uid * 100 + activity_id);
    assert_eq!(j["type_name"], format!("{}: {caption}", f.class.name));
    assert!(j["activity_name"].is_string());
    int("time");
    let severity = int("severity_id");
    assert_eq!(
        j["severity"],
        OCSF_SEVERITIES.iter().find(|s| s.0 == severity).unwrap().1
    );
    let status = int("status_id");
    let caption = OCSF_STATUSES.iter().find(|s| s.0 == status).unwrap().1;
    if status == 99 {
        assert!(j["status"].as_str().is_some_and(|s| !s.is_empty()));
    } else {
        assert_eq!(j["status"], caption);
    }
    for k in f.required {
        assert!(
            j.get(*k).is_some(),
            "{} needs {k}: {text:.300}",
            f.class.name
        );
    }
    if !f.at_least_one.is_empty() {
        assert!(f.at_least_one.iter().any(|k| j.get(*k).is_some()));
    }
    let m = &j["metadata"];
    assert_eq!(m["version"], OCSF_VERSION);
    assert_eq!(m["product"]["name"], "ringtrail");
    assert_eq!(m["product"]["vendor_name"], "ringtrail");
    assert_eq!(m["product"]["version"], env!("CARGO_PKG_VERSION"));
    let profiles: Vec<&str> = m["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for p in &profiles {
        assert!(
            f.profiles.contains(p),
            "{} does not have profile {p}",
            f.class.name
        );
    }
    // An attribute of a profile appears only when the profile is declared.
    for (profile, attributes) in OCSF_PROFILES {
        for a in *attributes {
            if j.get(*a).is_some() {
                assert!(profiles.contains(profile), "{a} without profile {profile}");
            }
        }
    }
    check_objects(&j, "");
    if let Some(ip) = j.pointer("/src_endpoint/ip") {
        assert!(ip.as_str().unwrap().parse::<std::net::IpAddr>().is_ok());
    }
    if let Some(id) = j.get("auth_protocol_id") {
        let id = id.as_i64().unwrap();
        let caption = OCSF_AUTH_PROTOCOLS.iter().find(|p| p.0 == id).unwrap().1;
        if id != 99 {
            assert_eq!(j["auth_protocol"], caption);
        }
    }
    if let Some(mc) = j.get("message_context") {
        for k in OCSF_INTEGERS {
            if let Some(n) = mc.get(*k) {
                assert!(n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()));
            }
        }
    }
    if let Some(u) = j.get("unmapped") {
        assert!(u.as_object().is_some_and(|u| !u.is_empty()));
    }
    j
}

// ---------------------------------------------------------------------
// OTLP/JSON shapes

fn check_any_value(v: &J) {
    let o = v.as_object().expect("an AnyValue object");
    assert_eq!(o.len(), 1, "one of the value fields: {v}");
    let (k, v) = o.iter().next().unwrap();
    match k.as_str() {
        "stringValue" => assert!(v.is_string()),
        "boolValue" => assert!(v.is_boolean()),
        "intValue" => assert!(v.as_str().is_some_and(|s| s.parse::<i64>().is_ok()), "{v}"),
        "doubleValue" => assert!(
            v.is_f64()
                || v.is_i64()
                || ["NaN", "Infinity", "-Infinity"].contains(&v.as_str().unwrap_or("")),
            "{v}"
        ),
        other => panic!("not an AnyValue field: {other}"),
    }
}

fn check_attributes(list: &J) {
    let mut seen = HashSet::new();
    for a in list.as_array().expect("attributes are an array") {
        let key = a["key"].as_str().expect("a key");
        assert!(seen.insert(key.to_owned()), "repeated attribute {key}");
        check_any_value(&a["value"]);
    }
}

fn check_otlp(text: &str) -> J {
    assert_unique_keys(text);
    let j = parse(text);
    assert_eq!(top_keys(text), ["resourceLogs"]);
    let rl = j["resourceLogs"].as_array().unwrap();
    assert_eq!(rl.len(), 1);
    check_attributes(&rl[0]["resource"]["attributes"]);
    assert!(rl[0]["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["key"] == "service.name"));
    let sl = rl[0]["scopeLogs"].as_array().unwrap();
    assert_eq!(sl.len(), 1);
    assert_eq!(sl[0]["scope"]["name"], "ringtrail");
    let records = sl[0]["logRecords"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    for k in ["timeUnixNano", "observedTimeUnixNano"] {
        assert!(
            r[k].as_str().is_some_and(|s| s.parse::<u64>().is_ok()),
            "{k}"
        );
    }
    let n = r["severityNumber"].as_i64().unwrap();
    assert!((0..=24).contains(&n));
    assert_eq!(r.get("severityText").is_some(), n > 0);
    check_any_value(&r["body"]);
    check_attributes(&r["attributes"]);
    if let Some(t) = r.get("traceId") {
        let t = t.as_str().unwrap();
        assert!(t.len() == 32 && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(t, "0".repeat(32));
    }
    let allowed = [
        "timeUnixNano",
        "observedTimeUnixNano",
        "severityNumber",
        "severityText",
        "body",
        "attributes",
        "traceId",
    ];
    for k in r.as_object().unwrap().keys() {
        assert!(allowed.contains(&k.as_str()), "{k}");
    }
    j
}

fn check_native(text: &str) -> J {
    let j = parse(text);
    let top = top_keys(text);
    assert_eq!(top.len(), 21, "{top:?}");
    assert_eq!(top.iter().collect::<HashSet<_>>().len(), 21);
    assert!(j["ts"].is_string() && j["id"].is_string() && j["fields"].is_object());
    assert!(j["level"].is_i64() && j["truncated"].is_boolean() && j["redacted"].is_i64());
    j
}

// ---------------------------------------------------------------------
// Random and adversarial rows

/// Texts that have broken JSON writers before, or could.
const NASTY: &[&str] = &[
    "",
    " ",
    "\0",
    "a\0b\0",
    "\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1b}\u{1f}",
    "\u{7f}\u{80}\u{85}\u{9f}",
    "\u{2028}\u{2029}",
    "\u{feff}BOM",
    "\u{fffd}\u{fffe}\u{ffff}",
    "\u{10ffff}",
    "\\ud800 not a surrogate",
    "\"\\\"",
    "\\",
    "é日本語🦀",
    "\u{202e}gnp.exe",
    "a.b",
    "a_b",
    "*.*\\",
    ".",
    "labels",
    "@timestamp",
    "message",
    "log.level",
    "NaN",
    "Infinity",
    "12",
    "-0",
    "99999999999999999999",
    "10.0.0.1",
    "::1",
    "fe80::1%eth0",
    "localhost",
    "success",
    "failure",
    "abandoned",
    "allow",
    "deny",
    "needs_approval",
    "approved",
    "ok",
    "error",
    "oauth",
    "SAML",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "4BF92F3577B34DA6A3CE929D0E0E4736",
    "00000000000000000000000000000000",
    "</script>",
    "{\"json\":[1,2]}",
];

struct Gen(Xorshift);

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.0.next_u64() % 100 < percent
    }

    fn text(&mut self) -> String {
        match self.below(10) {
            0..=3 => NASTY[self.below(NASTY.len())].to_owned(),
            4 if self.chance(10) => {
                // 64 KiB of mixed text.
                let unit = NASTY[self.below(NASTY.len())];
                let unit = if unit.is_empty() { "x\0" } else { unit };
                unit.repeat(65_536 / unit.len() + 1)
            }
            4 => "t".repeat(self.below(400)),
            _ => {
                let n = self.below(24);
                (0..n)
                    .map(|_| match self.below(6) {
                        0 => char::from_u32(self.below(0x20) as u32).unwrap(),
                        1 => char::from_u32(self.below(0x11_0000) as u32).unwrap_or('\u{fffd}'),
                        2 => ['.', '*', '\\', '"', '_'][self.below(5)],
                        _ => char::from(b'a' + self.below(26) as u8),
                    })
                    .collect()
            }
        }
    }

    fn name(&mut self) -> String {
        const NAMES: &[&str] = &[
            "error",
            "error.message",
            "message",
            "trace_id",
            "user_id",
            "labels",
            "a.b",
            "a_b",
            "",
            "audit.point",
        ];
        match self.below(4) {
            0 => field::ALL[self.below(field::ALL.len())].to_owned(),
            1 => MAPPED[self.below(MAPPED.len())].0.to_owned(),
            2 => NAMES[self.below(NAMES.len())].to_owned(),
            _ => self.text(),
        }
    }

    fn value(&mut self) -> OwnedValue {
        match self.below(12) {
            0 => OwnedValue::Bool(self.chance(50)),
            1 => OwnedValue::I64([i64::MIN, i64::MAX, -1, 0, 42][self.below(5)]),
            2 => OwnedValue::I64(self.0.next_u64() as i64),
            3 => OwnedValue::U64([u64::MAX, 1 << 31, 1 << 63, 7][self.below(4)]),
            4 => OwnedValue::I128([i128::MIN, i128::MAX, -3, 1 << 70][self.below(4)]),
            5 => OwnedValue::U128([u128::MAX, 0, 1 << 64][self.below(3)]),
            6 => OwnedValue::F64(
                [
                    f64::NAN,
                    -f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    -0.0,
                    5e-324,
                    f64::MAX,
                    1e19,
                    i64::MIN as f64,
                    0.1,
                    3.0,
                ][self.below(11)],
            ),
            7 => OwnedValue::F64(f64::from_bits(self.0.next_u64())),
            _ => OwnedValue::Str(self.text()),
        }
    }

    fn row(&mut self) -> OwnedRow {
        let n = match self.below(10) {
            0 => 0,
            1 => 60 + self.below(40),
            _ => self.below(8),
        };
        let mut fields: Vec<(String, OwnedValue)> =
            (0..n).map(|_| (self.name(), self.value())).collect();
        let kind = match self.below(8) {
            0..=2 => None,
            3 => Some([0, 6, -1, i16::MAX, i16::MIN][self.below(5)]),
            _ => Some(1 + self.below(5) as i16),
        };
        if let Some(k @ 1..=5) = kind {
            if self.chance(80) {
                let p = crate::audit::Point::from_kind(k).unwrap();
                fields.insert(
                    0,
                    (
                        "audit.point".to_owned(),
                        OwnedValue::Str(p.as_str().to_owned()),
                    ),
                );
            }
        }
        OwnedRow {
            ts: match self.below(5) {
                0 => [i64::MIN, i64::MAX, -1, 0, 1][self.below(5)],
                _ => self.0.next_u64() as i64,
            },
            id: self
                .0
                .next_u64()
                .to_le_bytes()
                .repeat(2)
                .try_into()
                .unwrap(),
            level: match self.below(4) {
                0 => self.0.next_u64() as i16,
                _ => [1, 5, 9, 13, 17, 21, 24, 0, 25][self.below(9)],
            },
            target: self.text(),
            message: self.text(),
            fields,
            context: std::array::from_fn(|_| {
                if self.chance(50) {
                    Some(self.text())
                } else {
                    None
                }
            }),
            span_name: self.chance(50).then(|| self.text()),
            file: self.chance(50).then(|| self.text()),
            line: self
                .chance(50)
                .then(|| [0, 1, u32::MAX, i32::MAX as u32 + 1][self.below(4)]),
            truncated: self.chance(20),
            kind,
            redacted: [0, 0, 1, u32::MAX][self.below(4)],
            seq: [0, 1, 42, u64::MAX][self.below(4)],
        }
    }
}

#[derive(Debug, Clone)]
enum OwnedValue {
    Bool(bool),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Str(String),
}

impl OwnedValue {
    fn value(&self) -> Value<'_> {
        match self {
            OwnedValue::Bool(b) => Value::Bool(*b),
            OwnedValue::I64(n) => Value::I64(*n),
            OwnedValue::U64(n) => Value::U64(*n),
            OwnedValue::I128(n) => Value::I128(*n),
            OwnedValue::U128(n) => Value::U128(*n),
            OwnedValue::F64(f) => Value::F64(*f),
            OwnedValue::Str(s) => Value::Str(s),
        }
    }
}

struct OwnedRow {
    ts: i64,
    id: [u8; 16],
    level: i16,
    target: String,
    message: String,
    fields: Vec<(String, OwnedValue)>,
    context: [Option<String>; CONTEXT_LEN],
    span_name: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    truncated: bool,
    kind: Option<i16>,
    redacted: u32,
    seq: u64,
}

#[test]
fn every_format_renders_random_and_adversarial_rows_as_one_valid_line() {
    let mut g = Gen(Xorshift::new(0x5e1f_2026));
    let mut renderers: Vec<Renderer> = Format::ALL
        .into_iter()
        .map(|f| Renderer::new(f).with_service_name(if f == Format::Ocsf { "" } else { "svc\0\n" }))
        .collect();
    for _ in 0..1_500 {
        let owned = g.row();
        let fields: Vec<Field<'_>> = owned
            .fields
            .iter()
            .map(|(n, v)| Field {
                name: n,
                value: v.value(),
            })
            .collect();
        let row = Row {
            ts_unix_nanos: owned.ts,
            id: owned.id,
            level: owned.level,
            target: &owned.target,
            message: &owned.message,
            fields: &fields,
            context: std::array::from_fn(|i| owned.context[i].as_deref()),
            span_name: owned.span_name.as_deref(),
            file: owned.file.as_deref(),
            line: owned.line,
            truncated: owned.truncated,
            kind: owned.kind,
            redacted: owned.redacted,
            seq: owned.seq,
        };
        for r in &mut renderers {
            let text = line(r, &row);
            let body = text.strip_suffix('\n').unwrap_or(&text);
            assert!(
                !body.chars().any(crate::render::is_unsafe),
                "a raw control or format character: {text:?}"
            );
            match r.format() {
                Format::Ecs => check_ecs(&text, &row),
                Format::Ocsf => {
                    let j = check_ocsf(&text);
                    let (class, _) = ocsf::class_of(&row);
                    assert_eq!(j["class_uid"], class.uid);
                }
                Format::Otlp => {
                    check_otlp(&text);
                }
                Format::Native => {
                    check_native(&text);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------
// Schema facts, and the reference files when they are there

/// `../shared/reference/<rel>`, when this checkout has it.
fn reference(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference")
        .join(rel);
    if path.exists() {
        Some(path)
    } else {
        println!(
            "note: {} is not here; skipping the cross-check against it",
            path.display()
        );
        None
    }
}

#[test]
fn ecs_fields_have_the_types_the_facts_say() {
    for (from, to, ty) in MAPPED {
        assert_eq!(ecs_type(to), Some(ty.name()), "{from} -> {to}");
    }
    for (name, ty) in WRITTEN {
        assert_eq!(ecs_type(name), Some(*ty), "{name}");
    }
    assert!(MAPPED.len() <= 64, "one bit per mapped field");
    // Every ECS type the table uses has a JSON check.
    for ty in [
        EcsType::Keyword,
        EcsType::MatchOnlyText,
        EcsType::Wildcard,
        EcsType::Long,
        EcsType::Integer,
        EcsType::Double,
        EcsType::Ip,
    ] {
        assert!(ECS_TYPES.iter().any(|(_, t)| *t == ty.name()));
    }
}

/// `name: value` lines of `ecs_flat.yml` for one top-level field.
fn ecs_block<'y>(yml: &'y str, field: &str) -> Vec<&'y str> {
    let head = [format!("{field}:"), format!("'{field}':")];
    let mut lines = yml.lines().skip_while(|l| !head.iter().any(|h| l == h));
    lines.next();
    // A block ends at the next unindented line (descriptions may hold
    // blank lines).
    lines
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

#[test]
fn ecs_facts_match_ecs_flat_yml() {
    let Some(path) = reference("ecs/ecs_flat-9.4.0.yml") else {
        return;
    };
    let yml = std::fs::read_to_string(path).unwrap();
    for (name, ty) in ECS_TYPES {
        let block = ecs_block(&yml, name);
        assert!(!block.is_empty(), "{name} is not in ECS 9.4");
        let found = block
            .iter()
            .find_map(|l| l.strip_prefix("  type: "))
            .unwrap();
        assert_eq!(found, *ty, "{name}");
        let array = block.iter().any(|l| l.trim() == "- array");
        assert_eq!(array, ECS_ARRAYS.contains(name), "{name} normalize: array");
    }
    // Allowed values: event.kind, event.outcome, and the categories with
    // their expected types.
    let allowed = |field: &str| -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        let mut types = Vec::new();
        let mut in_types = false;
        for l in ecs_block(&yml, field) {
            if l.starts_with("  - ") {
                types = Vec::new();
                in_types = false;
            }
            if l == "    expected_event_types:" {
                in_types = true;
            } else if in_types && l.starts_with("    - ") {
                types.push(l[6..].to_owned());
            } else if let Some(name) = l.strip_prefix("    name: ") {
                out.push((name.to_owned(), std::mem::take(&mut types)));
                in_types = false;
            } else if !l.starts_with("    - ") {
                in_types = false;
            }
        }
        out
    };
    let kinds = allowed("event.kind");
    assert!(kinds.iter().any(|(n, _)| n == ECS_KIND));
    let outcomes: Vec<String> = allowed("event.outcome")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(outcomes.len(), ECS_OUTCOMES.len());
    for o in ECS_OUTCOMES {
        assert!(outcomes.iter().any(|n| n == o), "{o}");
    }
    let categories = allowed("event.category");
    let types: Vec<String> = allowed("event.type").into_iter().map(|(n, _)| n).collect();
    for (category, used) in ECS_CATEGORY_TYPES {
        let expected = &categories.iter().find(|(n, _)| n == category).unwrap().1;
        for t in *used {
            assert!(
                expected.iter().any(|e| e == t),
                "{category} does not expect {t}"
            );
            assert!(types.iter().any(|e| e == t), "{t} is not an event.type");
        }
    }
}

#[test]
fn ecs_logging_facts_match_the_spec() {
    let Some(path) = reference("ecs-logging/spec/spec.json") else {
        return;
    };
    let spec: J = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let fields = spec["fields"].as_object().unwrap();
    for (i, name) in ECS_LOGGING_ORDER.iter().enumerate() {
        assert_eq!(fields[*name]["index"], i, "{name}");
    }
    for (name, f) in fields {
        if f["top_level_field"] == true {
            assert!(ECS_LOGGING_DOTTED.contains(&name.as_str()), "{name}");
        }
        if f["required"] == true {
            assert!(["@timestamp", "log.level", "ecs.version"].contains(&name.as_str()));
        }
    }
    let replaced: Vec<char> = fields["labels"]["sanitization"]["key"]["replacements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().chars().next().unwrap())
        .collect();
    assert_eq!(replaced, ECS_LABEL_FORBIDDEN);
    assert_eq!(fields["labels"]["sanitization"]["key"]["substitute"], "_");
}

#[test]
fn ocsf_classes_and_ids_are_the_facts() {
    assert_eq!(OCSF_VERSION, "1.9.0-dev");
    for f in OCSF_CLASSES {
        // class_uid = category_uid * 1000 + the class's uid in its category.
        assert!(f.class.uid == 0 || f.class.uid / 1000 == f.class.category_uid);
    }
    assert_eq!(ocsf::severity(9), (1, "Informational"));
    assert_eq!(ocsf::severity(13), (3, "Medium"));
    assert_eq!(ocsf::severity(17), (4, "High"));
    assert_eq!(ocsf::severity(21), (6, "Fatal"));
    assert_eq!(ocsf::severity(0), (0, "Unknown"));
    for level in -30..30 {
        let (id, caption) = ocsf::severity(level);
        assert!(OCSF_SEVERITIES.contains(&(id, caption)));
    }
    for m in [
        "oauth", "OIDC", "saml", "kerberos", "ntlm", "basic", "ldap", "mtls", "digest",
    ] {
        let (id, caption) = ocsf::auth_protocol(m);
        let known = OCSF_AUTH_PROTOCOLS.iter().find(|p| p.0 == id).unwrap();
        assert_eq!(caption.unwrap_or("Other"), known.1, "{m}");
    }
}

/// An OCSF class file and its parents, child first.
fn ocsf_chain(root: &std::path::Path, file: &str) -> Vec<J> {
    let mut out = Vec::new();
    let mut path = root.join("events").join(file);
    loop {
        let class: J = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let parent = class["extends"].as_str().map(str::to_owned);
        out.push(class);
        match parent {
            Some(p) if p == "base_event" => path = root.join("events/base_event.json"),
            Some(p) => path = root.join("events").join(&p).join(format!("{p}.json")),
            None => return out,
        }
    }
}

/// An OCSF object file and its parents, child first.
fn ocsf_object_chain(root: &std::path::Path, name: &str) -> Vec<J> {
    let mut out = Vec::new();
    let mut name = name.to_owned();
    loop {
        let path = root.join("objects").join(format!("{name}.json"));
        let o: J = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let parent = o["extends"].as_str().map(str::to_owned);
        out.push(o);
        match parent {
            Some(p) => name = p,
            None => return out,
        }
    }
}

/// Attribute → its merged definition over a chain (child wins).
fn merged(chain: &[J]) -> serde_json::Map<String, J> {
    let mut attrs = serde_json::Map::new();
    for c in chain.iter().rev() {
        for (k, v) in c["attributes"].as_object().into_iter().flatten() {
            if k == "$include" {
                continue;
            }
            let entry = attrs
                .entry(k.clone())
                .or_insert_with(|| J::Object(Default::default()));
            for (vk, vv) in v.as_object().unwrap() {
                entry[vk] = vv.clone();
            }
        }
    }
    attrs
}

fn required_of(attrs: &serde_json::Map<String, J>) -> Vec<String> {
    let mut r: Vec<String> = attrs
        .iter()
        .filter(|(_, v)| v["requirement"] == "required")
        .map(|(k, _)| k.clone())
        .collect();
    r.sort();
    r
}

fn at_least_one_of(chain: &[J]) -> Vec<String> {
    let mut a: Vec<String> = chain
        .iter()
        .find_map(|c| c.get("constraints").and_then(|c| c.get("at_least_one")))
        .and_then(J::as_array)
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    a.sort();
    a
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn ocsf_facts_match_the_schema() {
    let Some(root) = reference("ocsf-schema") else {
        return;
    };
    let read = |rel: &str| -> J {
        serde_json::from_str(&std::fs::read_to_string(root.join(rel)).unwrap()).unwrap()
    };
    assert_eq!(read("version.json")["version"], OCSF_VERSION);
    let categories = read("categories.json");
    let dictionary = read("dictionary.json");
    let dict = &dictionary["attributes"];

    for f in OCSF_CLASSES {
        let chain = ocsf_chain(&root, f.file);
        let attrs = merged(&chain);
        let mut want: Vec<&str> = OCSF_BASE_REQUIRED.to_vec();
        want.extend(f.required);
        assert_eq!(
            required_of(&attrs),
            sorted(&want),
            "{} required",
            f.class.name
        );
        assert_eq!(
            at_least_one_of(&chain),
            sorted(f.at_least_one),
            "{}",
            f.class.name
        );
        // Name, uid and category.
        assert_eq!(chain[0]["caption"], f.class.name);
        let category = chain.iter().find_map(|c| c["category"].as_str()).unwrap();
        if f.class.uid == 0 {
            assert_eq!(category, "other");
        } else {
            let cat = &categories["attributes"][category];
            assert_eq!(cat["uid"], f.class.category_uid);
            assert_eq!(cat["caption"], f.class.category_name);
            assert_eq!(
                f.class.uid,
                f.class.category_uid * 1000 + chain[0]["uid"].as_i64().unwrap()
            );
        }
        // Activities: the class's enum, or the base's 0 and 99.
        for (id, caption) in f.activities {
            let key = id.to_string();
            let found = attrs["activity_id"]["enum"][&key]["caption"]
                .as_str()
                .or_else(|| dict["activity_id"]["enum"][&key]["caption"].as_str());
            assert_eq!(found, Some(*caption), "{} activity {id}", f.class.name);
        }
        // Profiles.
        let mut profiles: Vec<String> = chain
            .iter()
            .flat_map(|c| c["profiles"].as_array().into_iter().flatten())
            .map(|p| p.as_str().unwrap().to_owned())
            .collect();
        profiles.sort();
        profiles.dedup();
        assert_eq!(profiles, sorted(f.profiles), "{} profiles", f.class.name);
    }

    // The profiles declared add no required attribute.
    for (profile, attributes) in OCSF_PROFILES {
        let p = read(&format!("profiles/{profile}.json"));
        let attrs = p["attributes"].as_object().unwrap();
        let mut names: Vec<&str> = attrs.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut want = attributes.to_vec();
        want.sort_unstable();
        assert_eq!(names, want, "{profile}");
        assert!(
            attrs.values().all(|a| a["requirement"] != "required"),
            "{profile}"
        );
    }

    // Objects.
    for (object, holders, required, any) in OCSF_OBJECTS {
        let chain = ocsf_object_chain(&root, object);
        assert_eq!(
            required_of(&merged(&chain)),
            sorted(required),
            "{object} required"
        );
        assert_eq!(
            at_least_one_of(&chain),
            sorted(any),
            "{object} at_least_one"
        );
        for h in *holders {
            let ty = dict[h]["type"].as_str().unwrap();
            assert_eq!(ty, *object, "{h} holds a {object}");
        }
    }

    // Enums and types.
    let captions = |attr: &str, extra: &J| -> Vec<(i64, String)> {
        let mut out: Vec<(i64, String)> = dict[attr]["enum"]
            .as_object()
            .into_iter()
            .flatten()
            .chain(extra.as_object().into_iter().flatten())
            .map(|(k, v)| {
                (
                    k.parse().unwrap(),
                    v["caption"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out.dedup();
        out
    };
    let own = |list: &[(i64, &str)]| -> Vec<(i64, String)> {
        list.iter().map(|(i, c)| (*i, (*c).to_owned())).collect()
    };
    assert_eq!(captions("severity_id", &J::Null), own(OCSF_SEVERITIES));
    let base = chain_attrs_base(&root);
    assert_eq!(
        captions("status_id", &base["status_id"]["enum"]),
        own(OCSF_STATUSES)
    );
    let protocols = captions("auth_protocol_id", &J::Null);
    for p in OCSF_AUTH_PROTOCOLS {
        assert!(protocols.contains(&(p.0, p.1.to_owned())), "{p:?}");
    }
    for k in OCSF_INTEGERS {
        assert_eq!(dict[k]["type"], "integer_t", "{k}");
    }
    for (k, ty) in [
        ("time", "timestamp_t"),
        ("type_uid", "long_t"),
        ("class_uid", "integer_t"),
        ("category_uid", "integer_t"),
        ("activity_id", "integer_t"),
        ("severity_id", "integer_t"),
        ("status_id", "integer_t"),
        ("ip", "ip_t"),
        ("profiles", "string_t"),
        ("unmapped", "object"),
        ("is_truncated", "boolean_t"),
    ] {
        assert_eq!(dict[k]["type"], ty, "{k}");
    }
    assert_eq!(
        dictionary["types"]["attributes"]["timestamp_t"]["type"],
        "long_t"
    );
}

fn chain_attrs_base(root: &std::path::Path) -> serde_json::Map<String, J> {
    merged(&ocsf_chain(root, "base_event.json"))
}

// ---------------------------------------------------------------------
// A full trace, point by point

#[test]
fn a_full_trace_renders_to_the_classes_of_the_mapping_table() {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let points: [(i16, &[Field<'_>]); 5] = [
        (
            1,
            &[
                Field {
                    name: "audit.point",
                    value: Value::Str("identity"),
                },
                Field {
                    name: "session_id",
                    value: Value::Str("s-9"),
                },
                Field {
                    name: "tenant.id",
                    value: Value::Str("acme"),
                },
                Field {
                    name: "auth.method",
                    value: Value::Str("oauth"),
                },
                Field {
                    name: "source.ip",
                    value: Value::Str("203.0.113.7"),
                },
            ],
        ),
        (
            2,
            &[
                Field {
                    name: "audit.point",
                    value: Value::Str("agent"),
                },
                Field {
                    name: "agent.id",
                    value: Value::Str("planner"),
                },
                Field {
                    name: "agent.version",
                    value: Value::Str("1.4.0"),
                },
                Field {
                    name: "gen_ai.request.model",
                    value: Value::Str("gpt-4o"),
                },
                Field {
                    name: "gen_ai.provider.name",
                    value: Value::Str("openai"),
                },
                Field {
                    name: "prompt.template.id",
                    value: Value::Str("tpl-1"),
                },
            ],
        ),
        (
            3,
            &[
                Field {
                    name: "audit.point",
                    value: Value::Str("permission"),
                },
                Field {
                    name: "decision",
                    value: Value::Str("deny"),
                },
                Field {
                    name: "policy.id",
                    value: Value::Str("policy-7"),
                },
                Field {
                    name: "policy.version",
                    value: Value::Str("3"),
                },
                Field {
                    name: "reason",
                    value: Value::Str("scope"),
                },
                Field {
                    name: "gen_ai.tool.name",
                    value: Value::Str("search"),
                },
                Field {
                    name: "gen_ai.tool.call.id",
                    value: Value::Str("c1"),
                },
            ],
        ),
        (
            4,
            &[
                Field {
                    name: "audit.point",
                    value: Value::Str("tool"),
                },
                Field {
                    name: "gen_ai.tool.name",
                    value: Value::Str("search"),
                },
                Field {
                    name: "gen_ai.tool.call.id",
                    value: Value::Str("c1"),
                },
                Field {
                    name: "mcp.method.name",
                    value: Value::Str("tools/call"),
                },
                Field {
                    name: "duration_ns",
                    value: Value::U64(1_250_000),
                },
                Field {
                    name: "status",
                    value: Value::Str("ok"),
                },
                Field {
                    name: "gen_ai.usage.input_tokens",
                    value: Value::U64(812),
                },
                Field {
                    name: "gen_ai.usage.output_tokens",
                    value: Value::U64(u64::MAX),
                },
            ],
        ),
        (
            5,
            &[
                Field {
                    name: "audit.point",
                    value: Value::Str("result"),
                },
                Field {
                    name: "outcome",
                    value: Value::Str("failure"),
                },
                Field {
                    name: "error.type",
                    value: Value::Str("timeout"),
                },
                Field {
                    name: "cost.micro_usd",
                    value: Value::U64(1_250),
                },
            ],
        ),
    ];
    let mut ocsf_r = Renderer::new(Format::Ocsf).with_service_name("checkout");
    let mut ecs_r = Renderer::new(Format::Ecs);
    let mut rows = Vec::new();
    for (kind, fields) in points {
        let mut row = Row {
            ts_unix_nanos: 1_764_466_647_123_456_789,
            target: crate::audit::TARGET,
            kind: Some(kind),
            fields,
            level: if kind == 3 { 13 } else { 9 },
            ..Row::default()
        };
        row.context[0] = Some(trace);
        row.context[1] = Some("u-42");
        let o = check_ocsf(&line(&mut ocsf_r, &row));
        let e = parse(&line(&mut ecs_r, &row));
        check_ecs(&line(&mut ecs_r, &row), &row);
        rows.push((o, e));
    }
    let [(id, id_e), (agent, agent_e), (perm, perm_e), (tool, tool_e), (result, result_e)] =
        <[(J, J); 5]>::try_from(rows).unwrap();

    // Identity: Authentication, Logon.
    assert_eq!(
        (id["class_uid"].as_i64(), id["type_uid"].as_i64()),
        (Some(3002), Some(300201))
    );
    assert_eq!(id["user"], serde_json::json!({"uid": "u-42"}));
    assert_eq!(id["actor"]["user"]["uid"], "u-42");
    assert_eq!(id["actor"]["session"]["uid"], "s-9");
    assert_eq!(id["service"]["name"], "checkout");
    assert_eq!(id["src_endpoint"]["ip"], "203.0.113.7");
    assert_eq!(
        (
            id["auth_protocol_id"].as_i64(),
            id["auth_protocol"].as_str()
        ),
        (Some(6), Some("OAUTH 2.0"))
    );
    assert_eq!(id["status_id"], 1);
    assert_eq!(id["metadata"]["tenant_uid"], "acme");
    assert_eq!(id["metadata"]["correlation_uid"], trace);
    assert_eq!(id["time"], 1_764_466_647_123_i64);
    assert!(id.get("unmapped").is_none(), "{id}");
    assert_eq!(id_e["source.ip"], "203.0.113.7");
    assert_eq!(id_e["organization.id"], "acme");
    assert_eq!(id_e["labels"]["auth_method"], "oauth");

    // Agent: API Activity, ai_agent with its model.
    assert_eq!(
        (agent["class_uid"].as_i64(), agent["type_uid"].as_i64()),
        (Some(6003), Some(600399))
    );
    assert_eq!(agent["activity_name"], "agent");
    assert_eq!(agent["api"]["operation"], "agent");
    assert_eq!(
        agent["ai_agent"],
        serde_json::json!({"uid": "planner", "version": "1.4.0", "ai_model": {"name": "gpt-4o", "ai_provider": "openai"}})
    );
    assert_eq!(
        agent["metadata"]["profiles"],
        serde_json::json!(["trace", "ai_operation"])
    );
    assert_eq!(agent["trace"]["uid"], trace);
    assert_eq!(
        agent["src_endpoint"],
        serde_json::json!({"svc_name": "checkout"})
    );
    assert_eq!(
        agent["unmapped"],
        serde_json::json!({"prompt.template.id": "tpl-1"})
    );
    assert_eq!(agent_e["gen_ai.agent.id"], "planner");
    assert_eq!(agent_e["gen_ai.system"], "openai");

    // Permission: the decision in actor.authorizations.
    assert_eq!(
        perm["actor"]["authorizations"],
        serde_json::json!([{"decision": "deny", "policy": {"uid": "policy-7", "version": "3"}}])
    );
    assert_eq!(perm["api"]["operation"], "search");
    assert_eq!(perm["api"]["request"]["uid"], "c1");
    assert_eq!(
        (perm["status_id"].as_i64(), perm["status_detail"].as_str()),
        (Some(2), Some("deny"))
    );
    assert_eq!(perm["status_code"], "scope");
    assert_eq!(perm["severity_id"], 3);
    assert!(perm.get("unmapped").is_none(), "{perm}");
    assert_eq!(perm_e["event.type"], serde_json::json!(["denied"]));
    assert_eq!(perm_e["rule.id"], "policy-7");
    assert_eq!(perm_e["event.reason"], "scope");

    // Tool: the operation, tokens that fit integer_t, the rest unmapped.
    assert_eq!(tool["api"]["operation"], "search");
    assert_eq!(tool["status_id"], 1);
    assert_eq!(
        tool["message_context"],
        serde_json::json!({"prompt_tokens": 812, "service": {"name": "checkout"}})
    );
    assert_eq!(
        tool["unmapped"],
        serde_json::json!({
            "mcp.method.name": "tools/call",
            "duration_ns": 1_250_000,
            "gen_ai.usage.output_tokens": u64::MAX,
        })
    );
    assert_eq!(tool_e["event.duration"], 1_250_000);
    assert_eq!(tool_e["event.outcome"], "success");

    // Result.
    assert_eq!(
        (result["status_id"].as_i64(), result["status_code"].as_str()),
        (Some(2), Some("timeout"))
    );
    assert_eq!(result["api"]["operation"], "result");
    assert_eq!(result_e["error.type"], "timeout");
    assert_eq!(result_e["event.outcome"], "failure");
    assert_eq!(result_e["labels"]["cost_micro_usd"], "1250");
}

#[test]
fn plain_rows_are_base_events_or_application_errors() {
    let mut r = Renderer::new(Format::Ocsf);
    let fields = [Field {
        name: "attempt",
        value: Value::U64(3),
    }];
    let mut row = Row {
        message: "retrying",
        target: "app::net",
        fields: &fields,
        ..Row::default()
    };
    row.context[0] = Some("t-1");
    row.context[1] = Some("u-1");
    let j = check_ocsf(&line(&mut r, &row));
    assert_eq!(
        (j["class_uid"].as_i64(), j["category_uid"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        (j["activity_id"].as_i64(), j["type_uid"].as_i64()),
        (Some(99), Some(99))
    );
    assert_eq!(j["activity_name"], "log");
    assert_eq!(j["status_id"], 0);
    assert_eq!(j["message"], "retrying");
    assert_eq!(j["metadata"]["log_provider"], "app::net");
    assert_eq!(j["metadata"]["correlation_uid"], "t-1");
    assert_eq!(j["metadata"]["profiles"], serde_json::json!([]));
    assert_eq!(
        j["unmapped"],
        serde_json::json!({"user_id": "u-1", "attempt": 3})
    );

    row.level = 17;
    let j = check_ocsf(&line(&mut r, &row));
    assert_eq!(
        (j["class_uid"].as_i64(), j["type_uid"].as_i64()),
        (Some(6008), Some(600801))
    );
    assert_eq!(j["severity_id"], 4);
    assert_eq!(j["metadata"]["log_level"], "ERROR");
}
