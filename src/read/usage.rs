//! AI usage and cost: [`usage()`] adds up the tokens and the cost of the
//! audit points of a time window, per model, user, agent or day, as
//! [`Group`]s. `ringtrail usage` prints them.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, SystemTime};
//! use ringtrail::read::{self, usage, By, Prices, UsageQuery};
//!
//! let url = ringtrail_cluster::fresh_database()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let options = ringtrail::tls::ConnectOptions::parse(&url)?;
//!     let mut client = read::connect(&options).await?;
//!     ringtrail::schema::apply(&mut client).await?;
//!     // Two traces as the writer stores them: t-1 made a model call and
//!     // gave no cost (its tokens are priced), t-2 made one and its result
//!     // says what it cost (its tokens are not priced again).
//!     client.batch_execute(r#"
//!         INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, trace_id, user_id, truncated, kind)
//!         SELECT now() - interval '1 hour', gen_random_uuid(), 9, 'ringtrail::audit', '', f::jsonb, t, u, false, k
//!         FROM (VALUES
//!           ('t-1', 'ann', 1, '{"audit.point": "identity"}'),
//!           ('t-1', NULL,  2, '{"audit.point": "agent", "agent.id": "planner", "gen_ai.request.model": "gpt-4o"}'),
//!           ('t-1', NULL,  4, '{"audit.point": "tool", "gen_ai.operation.name": "chat",
//!                              "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100,
//!                              "gen_ai.usage.cached_tokens": 0}'),
//!           ('t-1', NULL,  5, '{"audit.point": "result", "outcome": "success"}'),
//!           ('t-2', 'bob', 1, '{"audit.point": "identity"}'),
//!           ('t-2', NULL,  2, '{"audit.point": "agent", "agent.id": "planner", "gen_ai.request.model": "gpt-4o"}'),
//!           ('t-2', NULL,  4, '{"audit.point": "tool", "gen_ai.operation.name": "chat",
//!                              "gen_ai.usage.input_tokens": 5000, "gen_ai.usage.output_tokens": 10}'),
//!           ('t-2', NULL,  5, '{"audit.point": "result", "outcome": "success", "cost.micro_usd": 7}')
//!         ) AS p(t, u, k, f);
//!     "#).await?;
//!
//!     // USD per million tokens: 2.50 per million input tokens is 2.5 micro-USD a token.
//!     let prices = Prices::parse(r#"
//!         [models."gpt-4o"]
//!         input = 2.50
//!         output = 10.00
//!         cached = 1.25
//!     "#)?;
//!     let now = SystemTime::now();
//!     let day = UsageQuery { since: now - Duration::from_secs(86_400), until: now, by: By::User };
//!     let groups = usage(&client, &day, &prices).await?;
//!     // ann: 1000 × 2.5 + 100 × 10 = 3500 micro-USD, priced; bob: 7, as given.
//!     assert_eq!(groups.len(), 2);
//!     assert_eq!((groups[0].group.as_str(), groups[0].cost_micro_usd), ("ann", 3_500));
//!     assert_eq!((groups[1].group.as_str(), groups[1].cost_micro_usd), ("bob", 7));
//!     assert_eq!((groups[1].calls, groups[1].input_tokens), (1, 5_000));
//!
//!     let by_model = UsageQuery { by: By::Model, ..day };
//!     let groups = usage(&client, &by_model, &prices).await?;
//!     assert_eq!(groups[0].to_json(), serde_json::json!({
//!         "group": "gpt-4o", "calls": 2, "input_tokens": 6_000, "output_tokens": 110,
//!         "cached_tokens": 0, "cost_micro_usd": 3_507,
//!     }));
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```
//!
//! # The rules
//!
//! - **Tokens** are the `gen_ai.usage.input_tokens`,
//!   `gen_ai.usage.output_tokens` and `gen_ai.usage.cached_tokens` of the
//!   tool points (model calls and tool executions, `kind` 4) whose `ts`
//!   is in `[since, until)`. **`calls`** counts those tool points, with
//!   token counts or not. A count is a non-negative integer of at most 18
//!   digits, written as a JSON number or a string of digits; anything else
//!   (absent, negative, fractional, text) counts as 0.
//! - **A given cost** is the `cost.micro_usd` of a result point (`kind` 5)
//!   in the window, read as the counts are (a non-negative integer, else
//!   not given).
//! - **No double counting:** a trace whose result points give a cost
//!   (at any time, inside the window or not) has that cost and nothing
//!   else: its tokens are counted but never priced. Only the tokens of a
//!   trace with no result giving a cost (and of tool points without a
//!   `trace_id`) are priced, with the price file ([`Prices`]). A trace's
//!   given cost counts in the window of its result point, its tokens in
//!   the windows of its tool points, so the figures of windows that do not
//!   overlap add up to those of their union. A trace still running when
//!   the report is made has its tokens priced until its result brings a
//!   cost. Several results giving a cost in one trace all count.
//! - **Pricing:** the price of a tool point's model, per token kind:
//!   input × `input` + output × `output` + cached × `cached`. The three
//!   counts are priced as separate quantities (a provider whose input
//!   count includes the cached tokens should report the uncached ones as
//!   input). Tokens of a model the price file does not list, or of no
//!   model, are not priced (they cost 0).
//! - **Which model:** a tool point's is its `gen_ai.request.model`, else
//!   its trace's agent point's. A result's cost counts for the model named
//!   on the result, else the trace's agent point's model, else the model
//!   of a tool point of the trace that names one.
//! - **Which user:** the point's `user_id` column, else the `user_id` of
//!   its trace's identity point. **Which agent:** the trace's agent point's
//!   `agent.name`, else its `agent.id`. **Which day:** the UTC day of the
//!   point's `ts`, `YYYY-MM-DD`. When a trace's identity points name
//!   different users, its agent points different agents or models, or its
//!   model calls different models, the least value in byte order
//!   (`COLLATE "C"`) counts: deterministic, and it needs no sort (a trace
//!   normally has one user and one agent).
//! - **No value:** a point with no model, user or agent (NULL or empty)
//!   counts in the group [`NONE`], `(none)` (a model really named
//!   `(none)` shares it).
//! - **Exact figures:** counts are summed as PostgreSQL `numeric` and
//!   returned as `bigint` (a sum past `i64` fails the query rather than
//!   wrap). Prices are exact decimals, held as integer pico-USD per token
//!   ([`Price`]); a group's priced tokens are summed in pico-USD in `i128`
//!   and rounded once, to the nearest micro-USD, halves up; given costs
//!   are added after (they are whole micro-USD already).
//! - **Order:** by cost, highest first, then by group name; by day, oldest
//!   first.
//!
//! # The query
//!
//! One statement, [`USAGE_SQL`], with every key and value bound: the tool
//! and result points of the window (`kind IS NOT NULL` and `ts` in the
//! window: the BRIN index on `ts` and partition pruning, then a filter),
//! then, for the traces among them, every audit point through the
//! partial index `logs_audit_trace` (`trace_id = ANY (array)`, as
//! [`gaps()`](super::gaps()) reads them), projected to the few values
//! needed (a materialized CTE, so no `fields` reaches the aggregate) and
//! folded by one hash aggregate into a row per trace (its agent, agent
//! model, user, a model call's model, each the least, and whether a
//! result gives a cost), joined back and grouped by (group, model, priced
//! or not). The prices are applied in Rust on those few rows. On
//! 1,000,000 rows (400,000 audit points) the whole table takes about 1 s
//! and the last hour 0.1 s, what [`gaps()`](super::gaps()) takes on the same
//! window; `docs/usage.md` has the plan and the figures (`cargo bench
//! --bench usage`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::SystemTime;

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use crate::audit::contract::field;
use crate::error::Error;

/// The group of the points that have no value for the grouping (no
/// model, no user, no agent).
pub const NONE: &str = "(none)";

/// How [`usage()`] groups the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum By {
    /// By model (`gen_ai.request.model`).
    Model,
    /// By user (the `user_id` column).
    User,
    /// By agent (`agent.name`, else `agent.id`).
    Agent,
    /// By UTC day, `YYYY-MM-DD`.
    Day,
}

impl By {
    /// Every grouping, in declaration order.
    pub const ALL: [By; 4] = [By::Model, By::User, By::Agent, By::Day];

    /// Its name: `model`, `user`, `agent` or `day`.
    pub const fn as_str(self) -> &'static str {
        match self {
            By::Model => "model",
            By::User => "user",
            By::Agent => "agent",
            By::Day => "day",
        }
    }
}

impl fmt::Display for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for By {
    type Err = Error;

    /// `model`, `user`, `agent` or `day` (exact, lowercase).
    fn from_str(s: &str) -> Result<By, Error> {
        By::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown grouping {s:?}: expected model, user, agent or day"
                ))
            })
    }
}

/// Pico-USD (10⁻¹² USD) in a micro-USD.
const PICO_PER_MICRO: i128 = 1_000_000;

/// The highest price accepted, in USD per million tokens.
pub const MAX_PRICE_USD_PER_MILLION: u64 = 1_000_000;

/// A model's prices, in integer pico-USD per token (10⁻¹² USD): a price
/// file's USD per million tokens, times 10⁶. `2.50` USD per million
/// tokens is 2.5 micro-USD, 2,500,000 pico-USD a token, exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    /// An input token's price.
    pub input: u64,
    /// An output token's price.
    pub output: u64,
    /// A cached token's price.
    pub cached: u64,
}

/// Prices per model, from a TOML price file: USD per million input,
/// output and cached tokens.
///
/// ```toml
/// # USD per million tokens
/// [models."gpt-4o"]
/// input = 2.50
/// output = 10.00
/// cached = 1.25
/// ```
///
/// Each model is a table under `models` with exactly the three keys
/// `input`, `output` and `cached`. A price is a TOML number (`2.50`,
/// `10`, `1.5e-1`) or a string holding a decimal (`"2.50"`); it is read
/// from its text, never through a float, so it is exact. It must be
/// non-negative, at most [`MAX_PRICE_USD_PER_MILLION`], with at most six
/// decimal places (a pico-USD a token). Anything else (another key, a
/// missing price, a `nan`) is an [`Error::Config`] naming the model and
/// the key.
///
/// ```
/// use ringtrail::read::usage::{Price, Prices};
///
/// let prices = Prices::parse("[models.\"m\"]\ninput = 2.50\noutput = \"10\"\ncached = 0.000001\n").unwrap();
/// assert_eq!(prices.get("m"), Some(Price { input: 2_500_000, output: 10_000_000, cached: 1 }));
/// assert_eq!(prices.get("other"), None);
/// let bad = Prices::parse("[models.\"m\"]\ninput = -1\noutput = 1\ncached = 1\n").unwrap_err();
/// assert_eq!(bad.to_string(), "invalid configuration: price file: model \"m\": `input` is negative");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prices {
    models: BTreeMap<String, Price>,
}

impl Prices {
    /// Parses a price file's text (see [`Prices`]).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] with a one-line reason: the TOML does not parse
    /// (with its line), an unknown key, a missing, negative, too large
    /// or too precise price, or a value that is not a number.
    pub fn parse(toml_text: &str) -> crate::Result<Prices> {
        parse_prices(toml_text).map_err(|reason| Error::Config(format!("price file: {reason}")))
    }

    /// Reads and parses the price file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when it cannot be read (the path and the cause
    /// on one line) or does not parse ([`Prices::parse`]).
    pub fn load(path: &Path) -> crate::Result<Prices> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "price file {}: cannot read it: {e}",
                path.display()
            ))
        })?;
        parse_prices(&text)
            .map_err(|reason| Error::Config(format!("price file {}: {reason}", path.display())))
    }

    /// The prices of `model`, if the file lists it.
    pub fn get(&self, model: &str) -> Option<Price> {
        self.models.get(model).copied()
    }

    /// The models listed, in name order.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// Sets the prices of `model`.
    pub fn insert(&mut self, model: impl Into<String>, price: Price) {
        self.models.insert(model.into(), price);
    }
}

/// [`Prices::parse`] with the reason as a plain string.
fn parse_prices(text: &str) -> Result<Prices, String> {
    use toml::de::{DeTable, DeValue};

    let doc = DeTable::parse(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim().replace('\n', " ");
        match line {
            Some(line) => format!("not valid TOML (line {line}): {message}"),
            None => format!("not valid TOML: {message}"),
        }
    })?;
    let mut prices = Prices::default();
    for (key, value) in doc.get_ref() {
        let key: &str = key.get_ref();
        if key != "models" {
            return Err(format!("unknown key {key:?} (expected `models`)"));
        }
        let DeValue::Table(models) = value.get_ref() else {
            return Err("`models` is not a table".into());
        };
        for (model, table) in models {
            let model: &str = model.get_ref();
            let DeValue::Table(table) = table.get_ref() else {
                return Err(format!(
                    "model {model:?} is not a table of `input`, `output` and `cached`"
                ));
            };
            let mut price = [None; 3];
            for (k, v) in table {
                let k: &str = k.get_ref();
                let slot = match k {
                    "input" => 0,
                    "output" => 1,
                    "cached" => 2,
                    _ => {
                        return Err(format!(
                            "model {model:?}: unknown key {k:?} (expected input, output, cached)"
                        ))
                    }
                };
                let raw = match v.get_ref() {
                    DeValue::Integer(i) if i.radix() == 10 => i.as_str(),
                    DeValue::Float(f) => f.as_str(),
                    DeValue::String(s) => s.as_ref(),
                    _ => return Err(format!("model {model:?}: `{k}` is not a decimal number")),
                };
                let pico =
                    pico_per_token(raw).map_err(|why| format!("model {model:?}: `{k}` {why}"))?;
                price[slot] = Some(pico);
            }
            let get = |slot: usize, name: &str| {
                price[slot].ok_or_else(|| format!("model {model:?}: `{name}` is missing"))
            };
            let price = Price {
                input: get(0, "input")?,
                output: get(1, "output")?,
                cached: get(2, "cached")?,
            };
            prices.insert(model, price);
        }
    }
    Ok(prices)
}

/// Exactly `text` (a decimal: digits, an optional fraction, an optional
/// exponent) USD per million tokens, as pico-USD per token: the value
/// times 10⁶. The reason it is refused otherwise.
fn pico_per_token(text: &str) -> Result<u64, &'static str> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    if text.starts_with('-') {
        // "-0" is a negative sign on nothing; still refused: honest input has none.
        return Err("is negative");
    }
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => {
            let exp: i32 = text[at + 1..]
                .parse()
                .map_err(|_| "is not a decimal number")?;
            (&text[..at], exp)
        }
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err("is not a decimal number");
    }
    // The value is digits × 10^(exponent − fraction digits); in pico-USD a
    // token, × 10^6 more.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let shift = i64::from(exponent) - fraction.len() as i64 + 6;
    let (digits, shift) = if shift < 0 {
        let cut = usize::try_from(-shift).unwrap_or(usize::MAX);
        let keep = digits.len().saturating_sub(cut);
        if !digits[keep..].bytes().all(|b| b == b'0') {
            return Err("has more than six decimal places (a pico-USD a token)");
        }
        (&digits[..keep], 0)
    } else {
        (digits, shift)
    };
    let too_large = "is more than 1000000 (USD per million tokens)";
    if digits.is_empty() {
        return Ok(0);
    }
    if digits.len() as i64 + shift > 13 {
        return Err(too_large);
    }
    let mut value: u64 = digits.parse().map_err(|_| too_large)?;
    for _ in 0..shift {
        value = value.checked_mul(10).ok_or(too_large)?;
    }
    if value > MAX_PRICE_USD_PER_MILLION * 1_000_000 {
        return Err(too_large);
    }
    Ok(value)
}

/// What [`usage()`] reads: the window `[since, until)` by the points'
/// `ts`, and the grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageQuery {
    /// Start of the window (inclusive).
    pub since: SystemTime,
    /// End of the window (exclusive).
    pub until: SystemTime,
    /// How the points are grouped.
    pub by: By,
}

/// One group's usage, from [`usage()`]. Every figure is exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// The model, user, agent or day (`YYYY-MM-DD`, UTC); [`NONE`] for
    /// the points that have none. Stored text: escape it before showing
    /// it on a terminal.
    pub group: String,
    /// Tool points (model calls and tool executions).
    pub calls: i64,
    /// Their `gen_ai.usage.input_tokens`.
    pub input_tokens: i64,
    /// Their `gen_ai.usage.output_tokens`.
    pub output_tokens: i64,
    /// Their `gen_ai.usage.cached_tokens`.
    pub cached_tokens: i64,
    /// The cost in micro-USD: the results' given costs plus the priced
    /// tokens of traces that give none, rounded once (see the [module
    /// docs](self)).
    pub cost_micro_usd: i64,
}

impl Group {
    /// The group as JSON, exactly `{"group", "calls", "input_tokens",
    /// "output_tokens", "cached_tokens", "cost_micro_usd"}`: one line of
    /// `ringtrail usage --json`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "group": self.group,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_micro_usd": self.cost_micro_usd,
        })
    }
}

/// The statement [`usage()`] runs. Parameters: `$1` since and `$2` until
/// (`timestamptz`), `$3` the grouping ([`By::as_str`]), then the `fields`
/// keys `$4` [`field::INPUT_TOKENS`], `$5` [`field::OUTPUT_TOKENS`], `$6`
/// [`field::CACHED_TOKENS`], `$7` [`field::COST_MICRO_USD`], `$8`
/// [`field::REQUEST_MODEL`], `$9` [`field::AGENT_NAME`], `$10`
/// [`field::AGENT_ID`]. The kinds are those of
/// [`Point`](crate::audit::Point): 1 identity, 2 agent, 4 tool, 5 result.
///
/// Rows: the group (NULL for none), the model to price with (NULL for
/// none), whether the tokens are priced, then calls, input, output and
/// cached tokens and the given cost, all `bigint`.
pub const USAGE_SQL: &str = "\
WITH w AS MATERIALIZED (
    SELECT l.trace_id, l.kind, l.ts, NULLIF(l.user_id, '') AS user_id,
           NULLIF(l.fields ->> $8::text, '') AS model,
           CASE WHEN l.kind = 4 AND l.fields ->> $4::text ~ '^[0-9]{1,18}$'
                THEN (l.fields ->> $4::text)::bigint ELSE 0 END AS input,
           CASE WHEN l.kind = 4 AND l.fields ->> $5::text ~ '^[0-9]{1,18}$'
                THEN (l.fields ->> $5::text)::bigint ELSE 0 END AS output,
           CASE WHEN l.kind = 4 AND l.fields ->> $6::text ~ '^[0-9]{1,18}$'
                THEN (l.fields ->> $6::text)::bigint ELSE 0 END AS cached,
           CASE WHEN l.kind = 5 AND l.fields ->> $7::text ~ '^[0-9]{1,18}$'
                THEN (l.fields ->> $7::text)::bigint END AS cost
    FROM ringtrail.logs l
    WHERE l.kind IS NOT NULL AND l.kind IN (4, 5) AND l.ts >= $1 AND l.ts < $2
),
c AS MATERIALIZED (
    SELECT c.trace_id, c.kind,
           NULLIF(c.fields ->> $8::text, '') AS model,
           CASE WHEN c.kind = 2 THEN COALESCE(NULLIF(c.fields ->> $9::text, ''),
                                              NULLIF(c.fields ->> $10::text, '')) END AS agent,
           CASE WHEN c.kind = 1 THEN NULLIF(c.user_id, '') END AS user_id,
           c.kind = 5 AND c.fields ->> $7::text ~ '^[0-9]{1,18}$' AS costed
    FROM ringtrail.logs c
    WHERE c.kind IS NOT NULL AND c.kind IN (1, 2, 4, 5)
      AND c.trace_id = ANY (ARRAY(SELECT DISTINCT w.trace_id FROM w WHERE w.trace_id IS NOT NULL))
),
t AS (
    SELECT c.trace_id,
           min(c.model COLLATE \"C\") FILTER (WHERE c.kind = 2) AS agent_model,
           min(c.agent COLLATE \"C\") AS agent,
           min(c.user_id COLLATE \"C\") AS user_id,
           min(c.model COLLATE \"C\") FILTER (WHERE c.kind = 4) AS call_model,
           bool_or(c.costed) AS costed
    FROM c
    GROUP BY c.trace_id
),
p AS (
    SELECT w.kind, w.ts, w.input, w.output, w.cached, w.cost,
           CASE WHEN w.kind = 4 THEN COALESCE(w.model, t.agent_model)
                ELSE COALESCE(w.model, t.agent_model, t.call_model) END AS model,
           COALESCE(w.user_id, t.user_id) AS user_id,
           t.agent,
           w.kind = 4 AND NOT COALESCE(t.costed, false) AS priced
    FROM w LEFT JOIN t ON t.trace_id = w.trace_id
    WHERE w.kind = 4 OR w.cost IS NOT NULL
)
SELECT CASE $3::text WHEN 'model' THEN p.model
                     WHEN 'user' THEN p.user_id
                     WHEN 'agent' THEN p.agent
                     ELSE to_char(p.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') END AS grp,
       p.model, p.priced,
       count(*) FILTER (WHERE p.kind = 4),
       sum(p.input)::bigint, sum(p.output)::bigint, sum(p.cached)::bigint,
       COALESCE(sum(p.cost), 0)::bigint
FROM p
GROUP BY 1, 2, 3";

/// The window's usage, grouped as `query.by` says, priced with `prices`
/// where no result gives the cost. Sorted by cost (highest first), then
/// group name; [`By::Day`] by day (oldest first). See the [module
/// docs](self) for the rules.
///
/// # Errors
///
/// [`Error::Postgres`] when the query fails (a sum past `i64`
/// included); [`Error::Config`] if a group's cost passes `i64` micro-USD.
pub async fn usage(
    client: &impl GenericClient,
    query: &UsageQuery,
    prices: &Prices,
) -> crate::Result<Vec<Group>> {
    let mut tally = Tally::default();
    tally.add(client, query, prices).await?;
    tally.finish(query.by)
}

/// The figures of [`USAGE_SQL`]'s rows, per group, before the priced
/// pico-USD are rounded: rows of several databases (the shards of a
/// [`cluster`](super::cluster)) add up in one tally, so each group's cost
/// is rounded once, as on one database.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Per group: the figures, the given cost and the priced pico-USD.
    groups: BTreeMap<String, (Group, i128, i128)>,
}

impl Tally {
    /// Runs [`USAGE_SQL`] for `query` on `client` and adds its rows,
    /// priced with `prices`.
    pub(crate) async fn add(
        &mut self,
        client: &impl GenericClient,
        query: &UsageQuery,
        prices: &Prices,
    ) -> crate::Result<()> {
        let rows = client.query(USAGE_SQL, &params(query)).await?;
        let overflow = || Error::Config("usage: a group's cost does not fit in 64 bits".into());
        for row in &rows {
            let name: Option<String> = row.get(0);
            let model: Option<&str> = row.get(1);
            let priced: bool = row.get(2);
            let (calls, input, output, cached, given): (i64, i64, i64, i64, i64) =
                (row.get(3), row.get(4), row.get(5), row.get(6), row.get(7));
            let name = name.unwrap_or_else(|| NONE.to_owned());
            let (group, given_sum, pico) = self.groups.entry(name.clone()).or_insert_with(|| {
                (
                    Group {
                        group: name,
                        ..Group::default()
                    },
                    0,
                    0,
                )
            });
            group.calls = group.calls.checked_add(calls).ok_or_else(overflow)?;
            group.input_tokens = group.input_tokens.checked_add(input).ok_or_else(overflow)?;
            group.output_tokens = group
                .output_tokens
                .checked_add(output)
                .ok_or_else(overflow)?;
            group.cached_tokens = group
                .cached_tokens
                .checked_add(cached)
                .ok_or_else(overflow)?;
            *given_sum += i128::from(given);
            if priced {
                if let Some(price) = model.and_then(|m| prices.get(m)) {
                    // At most 3 × 9.2e18 tokens × 1e12 pico-USD per row: far
                    // inside i128, and so is any realistic number of rows.
                    let cost = i128::from(input) * i128::from(price.input)
                        + i128::from(output) * i128::from(price.output)
                        + i128::from(cached) * i128::from(price.cached);
                    *pico = pico.checked_add(cost).ok_or_else(overflow)?;
                }
            }
        }
        Ok(())
    }

    /// The groups, each cost rounded once, sorted as [`usage()`] sorts
    /// them for `by`.
    pub(crate) fn finish(self, by: By) -> crate::Result<Vec<Group>> {
        let overflow = || Error::Config("usage: a group's cost does not fit in 64 bits".into());
        let mut out = Vec::with_capacity(self.groups.len());
        for (_, (mut group, given, pico)) in self.groups {
            let priced = round_pico_to_micro(pico);
            group.cost_micro_usd = i64::try_from(given + priced).map_err(|_| overflow())?;
            out.push(group);
        }
        if by != By::Day {
            out.sort_by(|a, b| {
                b.cost_micro_usd
                    .cmp(&a.cost_micro_usd)
                    .then_with(|| a.group.cmp(&b.group))
            });
        }
        Ok(out)
    }
}

/// `pico` pico-USD (non-negative) in micro-USD, to the nearest, halves up.
fn round_pico_to_micro(pico: i128) -> i128 {
    (pico + PICO_PER_MICRO / 2) / PICO_PER_MICRO
}

/// The plan of [`USAGE_SQL`] for `query`: `EXPLAIN (COSTS OFF)`, or with
/// `analyze` `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)`, which runs it.
///
/// # Errors
///
/// [`Error::Postgres`] when the statement fails.
pub async fn explain(
    client: &impl GenericClient,
    query: &UsageQuery,
    analyze: bool,
) -> crate::Result<String> {
    super::explain_sql(client, USAGE_SQL, &params(query), analyze).await
}

/// [`USAGE_SQL`]'s parameters for `query`.
fn params(query: &UsageQuery) -> [&(dyn ToSql + Sync); 10] {
    // The grouping's name, as a parameter that lives as long as `query`.
    static BY_NAMES: [&str; 4] = [
        By::ALL[0].as_str(),
        By::ALL[1].as_str(),
        By::ALL[2].as_str(),
        By::ALL[3].as_str(),
    ];
    let at = By::ALL.iter().position(|b| *b == query.by).unwrap_or(0);
    let by: &'static &'static str = &BY_NAMES[at];
    [
        &query.since,
        &query.until,
        by,
        &field::INPUT_TOKENS,
        &field::OUTPUT_TOKENS,
        &field::CACHED_TOKENS,
        &field::COST_MICRO_USD,
        &field::REQUEST_MODEL,
        &field::AGENT_NAME,
        &field::AGENT_ID,
    ]
}

/// `n` with a comma every three digits, exactly: how usage figures are
/// shown (never `31.8k`).
///
/// ```
/// use ringtrail::read::usage::thousands;
/// assert_eq!(thousands(31_804_112), "31,804,112");
/// assert_eq!(thousands(-999), "-999");
/// ```
pub fn thousands(n: i128) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Micro-USD as USD with six decimals, exactly (no float on the way).
///
/// ```
/// use ringtrail::read::usage::usd;
/// assert_eq!(usd(3_507), "0.003507");
/// assert_eq!(usd(1_234_567_890), "1,234.567890");
/// ```
pub fn usd(micro: i128) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let m = micro.unsigned_abs();
    format!(
        "{sign}{}.{:06}",
        thousands((m / 1_000_000) as i128),
        m % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Point;

    #[test]
    fn the_sql_kinds_are_the_points() {
        assert_eq!(
            [Point::Identity, Point::Agent, Point::Tool, Point::Result].map(Point::kind),
            [1, 2, 4, 5]
        );
        assert!(USAGE_SQL.contains("l.kind IN (4, 5)"));
    }

    #[test]
    fn by_round_trips() {
        for by in By::ALL {
            assert_eq!(by.to_string().parse::<By>().unwrap(), by);
        }
        let err = "Model".parse::<By>().unwrap_err().to_string();
        assert!(
            err.contains("\"Model\"") && err.contains("model, user, agent or day"),
            "{err}"
        );
    }

    #[test]
    fn prices_are_exact_decimals() {
        for (text, pico) in [
            ("2.50", 2_500_000),
            ("2.5", 2_500_000),
            ("10", 10_000_000),
            ("0", 0),
            ("0.0", 0),
            ("0.000001", 1),
            ("0.0000010", 1),
            ("1e-6", 1),
            ("1.5E2", 150_000_000),
            ("+3", 3_000_000),
            (".5", 500_000),
            ("5.", 5_000_000),
            ("1000000", 1_000_000_000_000),
            ("000012.340000", 12_340_000),
            ("0.1", 100_000),
            ("0.3", 300_000),
        ] {
            assert_eq!(pico_per_token(text), Ok(pico), "{text}");
        }
        for text in [
            "-1",
            "-0",
            "0.0000001",
            "1e-7",
            "1000000.000001",
            "1e7",
            "nan",
            "inf",
            "",
            ".",
            "1.2.3",
            "1_0",
            "0x10",
            "1e",
            "1e99999999999",
            "١",
        ] {
            assert!(pico_per_token(text).is_err(), "{text}");
        }
    }

    #[test]
    fn price_files_name_what_is_wrong() {
        let ok = Prices::parse(
            "# USD per million tokens\n[models.\"gpt-4o\"]\ninput = 2.50\noutput = 10.00\ncached = 1.25\n\
             [models.\"tiny\"]\ninput = 0.075\noutput = \"0.30\"\ncached = 0\n",
        )
        .unwrap();
        assert_eq!(
            ok.get("gpt-4o"),
            Some(Price {
                input: 2_500_000,
                output: 10_000_000,
                cached: 1_250_000
            })
        );
        assert_eq!(ok.get("tiny").unwrap().input, 75_000);
        assert_eq!(ok.models().collect::<Vec<_>>(), ["gpt-4o", "tiny"]);
        assert_eq!(Prices::parse("").unwrap(), Prices::default());
        let underscored =
            Prices::parse("[models.m]\ninput = 1_000.5\noutput = 1_0\ncached = 1\n").unwrap();
        assert_eq!(underscored.get("m").unwrap().input, 1_000_500_000);
        assert_eq!(underscored.get("m").unwrap().output, 10_000_000);
        for (text, needle) in [
            (
                "[models.m]\ninput = 1\noutput = 1\n",
                "model \"m\": `cached` is missing",
            ),
            (
                "[models.m]\ninput = 1\noutput = 1\ncached = 1\nbulk = 2\n",
                "model \"m\": unknown key \"bulk\"",
            ),
            (
                "[models.m]\ninput = -2.5\noutput = 1\ncached = 1\n",
                "model \"m\": `input` is negative",
            ),
            (
                "[models.m]\ninput = 1\noutput = nan\ncached = 1\n",
                "model \"m\": `output` is not a decimal",
            ),
            (
                "[models.m]\ninput = 1\noutput = 1\ncached = true\n",
                "model \"m\": `cached` is not a decimal",
            ),
            (
                "[models.m]\ninput = 0.0000001\noutput = 1\ncached = 1\n",
                "more than six decimal places",
            ),
            (
                "[models.m]\ninput = 0x10\noutput = 1\ncached = 1\n",
                "`input` is not a decimal",
            ),
            ("[prices.m]\ninput = 1\n", "unknown key \"prices\""),
            ("models = 3\n", "`models` is not a table"),
            ("[models]\nm = 3\n", "model \"m\" is not a table"),
            ("[models.m]\ninput = \n", "not valid TOML (line 2)"),
        ] {
            let err = Prices::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle:?} in {err:?}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }

    #[test]
    fn rounding_is_once_and_half_up() {
        assert_eq!(round_pico_to_micro(0), 0);
        assert_eq!(round_pico_to_micro(499_999), 0);
        assert_eq!(round_pico_to_micro(500_000), 1);
        assert_eq!(round_pico_to_micro(1_499_999), 1);
        assert_eq!(round_pico_to_micro(2_500_000), 3);
    }
}
