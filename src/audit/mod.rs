//! Five-point AI audit traces.
//!
//! Every AI request or agent action leaves one trace of five points,
//! joined by `trace_id`: **identity → agent → permission → tool → result**.
//! The question a reviewer asks of it: *was every action authorized, and
//! did it happen as authorized?* [`rules::check`] answers it.
//!
//! # The wire contract
//!
//! An audit point is an ordinary `tracing` event, on the same
//! zero-allocation hot path as any other:
//!
//! - target [`TARGET`] (`ringtrail::audit`);
//! - a string field [`POINT_FIELD`] (`audit.point`) naming the [`Point`];
//! - `trace_id` on the event, or from its span (an event field wins);
//! - the point's fields below, named by the constants in
//!   [`contract::field`]. Required fields are in bold. Other fields are
//!   kept in `fields`, as for any event.
//!
//! | point | `kind` | required | recommended |
//! |---|---|---|---|
//! | `identity` | 1 | **`user_id`** (event or span) | `session_id`, `client_id`, `tenant.id`, `auth.method`, `source.ip` |
//! | `agent` | 2 | **`agent.id`** | `agent.name`, `agent.version`, `gen_ai.request.model`, `gen_ai.provider.name`, `prompt.template.id`, `prompt.template.version`, `mcp.server.name` |
//! | `permission` | 3 | **`decision`** ([`Decision`]: `allow`, `deny`, `needs_approval`, `approved`), **`policy.id`** | `policy.version`, `reason`, `scopes`, `approver`, and what it covers: `gen_ai.tool.name`, `gen_ai.tool.call.id` |
//! | `tool` | 4 | **`gen_ai.tool.name`** (a tool execution) or **`gen_ai.operation.name`** (a model call) | `gen_ai.request.model`, `gen_ai.tool.call.id`, `mcp.method.name`, `args.sha256`, `duration_ns`, `status` ([`Status`]: `ok`, `error`), `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, `gen_ai.usage.cached_tokens` |
//! | `result` | 5 | **`outcome`** ([`Outcome`]: `success`, `failure`, `abandoned`) | `error.type`, `duration_ns`, `tokens.total`, `cost.micro_usd` (integer micro-USD) |
//!
//! `kind` is the value of the `kind smallint` column of `ringtrail.logs`
//! ([`Point::kind`]); it is NULL for every other event.
//!
//! # The typed API
//!
//! The easy path: a [`Trace`] guard made with the identity carries the
//! trace id to every point, and one builder per point ([`Identity`],
//! [`Agent`], [`Permission`], [`Tool`], [`Finish`]) emits exactly the
//! contract, allocating nothing.
//!
//! ```
//! use ringtrail::audit::{Agent, Finish, Identity, Permission, Status, Tool, Trace};
//!
//! let trace = Trace::start(Identity::user("u-1").session("s-9").tenant("acme"));
//! trace.agent(Agent::new("planner").version("1.4.0").model("gpt-4o").provider("openai"));
//! trace.permission(Permission::allow("policy-7").tool("search").call_id("c1"));
//! trace.tool(Tool::mcp("search").call_id("c1").status(Status::Ok));
//! trace.finish(Finish::success().tokens_total(812).cost_micro_usd(1_250));
//! ```
//!
//! A trace dropped without [`Trace::finish`] (an early return, `?`, a
//! panic) emits a result with outcome `abandoned`. See [`Trace`] for a
//! sync and an async (tokio) handler.
//!
//! Levels: a `deny`, a `failure` and an `abandoned` result are WARN,
//! every other point INFO. Let the `ringtrail::audit` target through at
//! INFO in your filters.
//!
//! # The raw path
//!
//! Code that cannot use the typed API (another crate, a macro) emits the
//! same event with `tracing::event!`:
//!
//! ```
//! use tracing::{event, Level};
//!
//! event!(
//!     target: "ringtrail::audit",
//!     Level::INFO,
//!     audit.point = "tool",
//!     trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
//!     gen_ai.tool.name = "search",
//!     gen_ai.tool.call.id = "c1",
//!     status = "ok",
//!     duration_ns = 1_200_000u64
//! );
//! ```
//!
//! Beware a `tracing` macro quirk: the level macros do not compile when
//! the first field after `target:` is dotted, so
//! `info!(target: "ringtrail::audit", audit.point = "tool", ...)` fails;
//! write `event!(target: ..., Level::INFO, audit.point = ..., ...)` as
//! above. Field names may also be the contract's constants, in braces:
//! `{ ringtrail::audit::POINT_FIELD } = "tool"` (what the typed API does).
//!
//! # Completeness
//!
//! [`rules::check`] takes a trace's rows in order (`ts`, then the
//! thread's sequence number `seq`, then `id`) and returns its
//! [`Finding`]s: `missing_identity`, `missing_agent`,
//! `missing_permission`, `executed_after_deny`, `missing_result`,
//! `abandoned`, `out_of_order`, and `trace_too_large` from a reader that
//! stopped at its limit. A complete trace has none. [`rules::Checker`]
//! takes the rows one at a time, in linear time.

mod api;
pub mod contract;
pub mod rules;

pub use api::{Agent, Finish, Identity, Permission, Tool, Trace, MAX_TRACE_ID_LEN};
pub use contract::{Decision, Outcome, Point, Status, POINT_FIELD, TARGET};
pub use rules::{check, Finding, FindingCode, PointRow};
