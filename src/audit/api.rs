//! The typed audit API: one builder per point, and the request-scoped
//! [`Trace`] guard that carries the trace id to each of them.
//!
//! Every builder borrows its text (`&'a str`) and is `Copy`, so building
//! and emitting a point allocates nothing. Each emits exactly the wire
//! contract of [`contract`](super::contract): the field names in the
//! `event!` calls below *are* its constants (`{ CONST } = value`), so the
//! typed and the raw paths cannot disagree. Unset fields are `None` and
//! `tracing` records an `Option` field only when it is `Some`.
//!
//! Levels: a `deny` decision, a `failure` and an `abandoned` result are
//! WARN; every other point is INFO. A filter that lets the
//! `ringtrail::audit` target through at INFO keeps them all.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::contract::{field as f, Decision, Outcome, Point, Status, POINT_FIELD, TARGET};
use crate::ids::Xorshift;

/// Emits one audit event: `info` at INFO; `warn_if(cond)` at WARN when
/// `cond` holds, else at INFO (two call sites, because a `tracing` call
/// site's level is static).
macro_rules! audit_event {
    (info, { $($fields:tt)* }) => {
        ::tracing::event!(target: TARGET, ::tracing::Level::INFO, { $($fields)* })
    };
    (warn_if($warn:expr), { $($fields:tt)* }) => {
        if $warn {
            ::tracing::event!(target: TARGET, ::tracing::Level::WARN, { $($fields)* })
        } else {
            ::tracing::event!(target: TARGET, ::tracing::Level::INFO, { $($fields)* })
        }
    };
}

/// `Some(trace_id)`, or `None` for an empty id (the span's `trace_id`
/// then fills the column).
fn non_empty(trace_id: &str) -> Option<&str> {
    (!trace_id.is_empty()).then_some(trace_id)
}

/// Nanoseconds of `d`, saturating at `u64::MAX` (584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The identity point: who is asking.
///
/// ```
/// use ringtrail::audit::Identity;
///
/// let who = Identity::user("u-1")
///     .session("s-9")
///     .client("web")
///     .tenant("acme")
///     .auth_method("oauth")
///     .source_ip("10.0.0.8");
/// who.emit("4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a point does nothing until it is emitted"]
pub struct Identity<'a> {
    user: Option<&'a str>,
    session: Option<&'a str>,
    client: Option<&'a str>,
    tenant: Option<&'a str>,
    auth_method: Option<&'a str>,
    source_ip: Option<&'a str>,
}

impl<'a> Identity<'a> {
    /// The identity of `user_id`.
    pub fn user(user_id: &'a str) -> Identity<'a> {
        Identity {
            user: Some(user_id),
            ..Identity::default()
        }
    }

    /// An identity whose `user_id` comes from the enclosing span (the
    /// event then carries no `user_id` field of its own).
    pub fn from_span() -> Identity<'a> {
        Identity::default()
    }

    /// The session id (`session_id`).
    pub fn session(mut self, session_id: &'a str) -> Self {
        self.session = Some(session_id);
        self
    }

    /// The client or app id (`client_id`).
    pub fn client(mut self, client_id: &'a str) -> Self {
        self.client = Some(client_id);
        self
    }

    /// The tenant (`tenant.id`).
    pub fn tenant(mut self, tenant_id: &'a str) -> Self {
        self.tenant = Some(tenant_id);
        self
    }

    /// How the user authenticated (`auth.method`), e.g. `oauth`.
    pub fn auth_method(mut self, method: &'a str) -> Self {
        self.auth_method = Some(method);
        self
    }

    /// The caller's IP address (`source.ip`).
    pub fn source_ip(mut self, ip: &'a str) -> Self {
        self.source_ip = Some(ip);
        self
    }

    /// Emits the point (INFO). An empty `trace_id` leaves the trace id to
    /// the enclosing span.
    pub fn emit(&self, trace_id: &str) {
        let trace_id = non_empty(trace_id);
        audit_event!(info, {
            { POINT_FIELD } = Point::Identity.as_str(),
            { f::TRACE_ID } = trace_id,
            { f::USER_ID } = self.user,
            { f::SESSION_ID } = self.session,
            { f::CLIENT_ID } = self.client,
            { f::TENANT_ID } = self.tenant,
            { f::AUTH_METHOD } = self.auth_method,
            { f::SOURCE_IP } = self.source_ip
        });
    }
}

/// The agent point: which agent, model, prompt and MCP server.
///
/// ```
/// use ringtrail::audit::Agent;
///
/// let agent = Agent::new("planner")
///     .name("Trip planner")
///     .version("1.4.0")
///     .model("gpt-4o")
///     .provider("openai")
///     .prompt_template("plan", "7")
///     .mcp_server("travel-tools");
/// agent.emit("4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a point does nothing until it is emitted"]
pub struct Agent<'a> {
    id: &'a str,
    name: Option<&'a str>,
    version: Option<&'a str>,
    model: Option<&'a str>,
    provider: Option<&'a str>,
    template_id: Option<&'a str>,
    template_version: Option<&'a str>,
    mcp_server: Option<&'a str>,
}

impl<'a> Agent<'a> {
    /// The agent `agent_id` (`agent.id`).
    pub fn new(agent_id: &'a str) -> Agent<'a> {
        Agent {
            id: agent_id,
            name: None,
            version: None,
            model: None,
            provider: None,
            template_id: None,
            template_version: None,
            mcp_server: None,
        }
    }

    /// Its display name (`agent.name`).
    pub fn name(mut self, name: &'a str) -> Self {
        self.name = Some(name);
        self
    }

    /// Its version (`agent.version`).
    pub fn version(mut self, version: &'a str) -> Self {
        self.version = Some(version);
        self
    }

    /// The model it requests (`gen_ai.request.model`).
    pub fn model(mut self, model: &'a str) -> Self {
        self.model = Some(model);
        self
    }

    /// The model's provider (`gen_ai.provider.name`), e.g. `openai`.
    pub fn provider(mut self, provider: &'a str) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The prompt template and its version (`prompt.template.id`,
    /// `prompt.template.version`).
    pub fn prompt_template(mut self, id: &'a str, version: &'a str) -> Self {
        self.template_id = Some(id);
        self.template_version = Some(version);
        self
    }

    /// The MCP server it talks to (`mcp.server.name`).
    pub fn mcp_server(mut self, name: &'a str) -> Self {
        self.mcp_server = Some(name);
        self
    }

    /// Emits the point (INFO). An empty `trace_id` leaves the trace id to
    /// the enclosing span.
    pub fn emit(&self, trace_id: &str) {
        let trace_id = non_empty(trace_id);
        audit_event!(info, {
            { POINT_FIELD } = Point::Agent.as_str(),
            { f::TRACE_ID } = trace_id,
            { f::AGENT_ID } = self.id,
            { f::AGENT_NAME } = self.name,
            { f::AGENT_VERSION } = self.version,
            { f::REQUEST_MODEL } = self.model,
            { f::PROVIDER_NAME } = self.provider,
            { f::PROMPT_TEMPLATE_ID } = self.template_id,
            { f::PROMPT_TEMPLATE_VERSION } = self.template_version,
            { f::MCP_SERVER_NAME } = self.mcp_server
        });
    }
}

/// The permission point: a policy decision, and the action it covers.
///
/// A permission names the tool it covers with [`tool`](Permission::tool)
/// and/or [`call_id`](Permission::call_id); with neither it is a blanket
/// decision that covers every tool point after it (see
/// [`rules`](super::rules)).
///
/// ```
/// use ringtrail::audit::{Decision, Permission};
///
/// let p = Permission::new(Decision::Allow, "policy-7")
///     .policy_version("3")
///     .reason("in_scope")
///     .scopes("search:read")
///     .tool("search")
///     .call_id("c1");
/// p.emit("4bf92f3577b34da6a3ce929d0e0e4736");
///
/// // Shorter: an allow of one call, and a blanket deny (WARN).
/// Permission::allow("policy-7").tool("search").call_id("c1").emit("4bf92f35");
/// Permission::deny("policy-7").reason("outside_hours").emit("4bf92f35");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a point does nothing until it is emitted"]
pub struct Permission<'a> {
    decision: Decision,
    policy: &'a str,
    policy_version: Option<&'a str>,
    reason: Option<&'a str>,
    scopes: Option<&'a str>,
    approver: Option<&'a str>,
    tool: Option<&'a str>,
    call_id: Option<&'a str>,
}

impl<'a> Permission<'a> {
    /// `decision` by the policy `policy_id` (`decision`, `policy.id`).
    pub fn new(decision: Decision, policy_id: &'a str) -> Permission<'a> {
        Permission {
            decision,
            policy: policy_id,
            policy_version: None,
            reason: None,
            scopes: None,
            approver: None,
            tool: None,
            call_id: None,
        }
    }

    /// An `allow` by `policy_id`.
    pub fn allow(policy_id: &'a str) -> Permission<'a> {
        Permission::new(Decision::Allow, policy_id)
    }

    /// A `deny` by `policy_id` (emitted at WARN).
    pub fn deny(policy_id: &'a str) -> Permission<'a> {
        Permission::new(Decision::Deny, policy_id)
    }

    /// A `needs_approval` by `policy_id`: the action may run only after
    /// an [`approved`](Permission::approved).
    pub fn needs_approval(policy_id: &'a str) -> Permission<'a> {
        Permission::new(Decision::NeedsApproval, policy_id)
    }

    /// An `approved` under `policy_id`; name who with
    /// [`approver`](Permission::approver).
    pub fn approved(policy_id: &'a str) -> Permission<'a> {
        Permission::new(Decision::Approved, policy_id)
    }

    /// The decision.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// The policy's version (`policy.version`).
    pub fn policy_version(mut self, version: &'a str) -> Self {
        self.policy_version = Some(version);
        self
    }

    /// A reason code (`reason`).
    pub fn reason(mut self, reason: &'a str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The scopes granted or checked (`scopes`), e.g. `"search:read mail:send"`.
    pub fn scopes(mut self, scopes: &'a str) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// Who approved (`approver`).
    pub fn approver(mut self, approver: &'a str) -> Self {
        self.approver = Some(approver);
        self
    }

    /// The tool the decision covers (`gen_ai.tool.name`).
    pub fn tool(mut self, tool_name: &'a str) -> Self {
        self.tool = Some(tool_name);
        self
    }

    /// The tool call the decision covers (`gen_ai.tool.call.id`).
    pub fn call_id(mut self, call_id: &'a str) -> Self {
        self.call_id = Some(call_id);
        self
    }

    /// Emits the point: WARN for `deny`, else INFO. An empty `trace_id`
    /// leaves the trace id to the enclosing span.
    pub fn emit(&self, trace_id: &str) {
        let trace_id = non_empty(trace_id);
        audit_event!(warn_if(self.decision == Decision::Deny), {
            { POINT_FIELD } = Point::Permission.as_str(),
            { f::TRACE_ID } = trace_id,
            { f::DECISION } = self.decision.as_str(),
            { f::POLICY_ID } = self.policy,
            { f::POLICY_VERSION } = self.policy_version,
            { f::REASON } = self.reason,
            { f::SCOPES } = self.scopes,
            { f::APPROVER } = self.approver,
            { f::TOOL_NAME } = self.tool,
            { f::TOOL_CALL_ID } = self.call_id
        });
    }
}

/// The tool point: a tool execution, or a model call.
///
/// ```
/// use std::time::Duration;
/// use ringtrail::audit::{Status, Tool};
///
/// let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
/// Tool::mcp("search") // mcp.method.name = "tools/call"
///     .call_id("c1")
///     .args_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
///     .duration(Duration::from_millis(42))
///     .status(Status::Ok)
///     .emit(trace_id);
///
/// Tool::model_call("chat", "gpt-4o")
///     .usage(1_200, 340, 1_024)
///     .duration(Duration::from_millis(900))
///     .status(Status::Ok)
///     .emit(trace_id);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a point does nothing until it is emitted"]
pub struct Tool<'a> {
    name: Option<&'a str>,
    operation: Option<&'a str>,
    model: Option<&'a str>,
    call_id: Option<&'a str>,
    mcp_method: Option<&'a str>,
    args_sha256: Option<&'a str>,
    duration_ns: Option<u64>,
    status: Option<Status>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cached_tokens: Option<u64>,
}

impl<'a> Tool<'a> {
    /// A tool point with no field set (not public: one of the two
    /// required names must be set).
    const fn empty() -> Tool<'a> {
        Tool {
            name: None,
            operation: None,
            model: None,
            call_id: None,
            mcp_method: None,
            args_sha256: None,
            duration_ns: None,
            status: None,
            input_tokens: None,
            output_tokens: None,
            cached_tokens: None,
        }
    }

    /// An execution of the tool `tool_name` (`gen_ai.tool.name`).
    pub fn execution(tool_name: &'a str) -> Tool<'a> {
        Tool {
            name: Some(tool_name),
            ..Tool::empty()
        }
    }

    /// An MCP `tools/call` of `tool_name`: [`execution`](Tool::execution)
    /// with `mcp.method.name = "tools/call"`.
    pub fn mcp(tool_name: &'a str) -> Tool<'a> {
        Tool::execution(tool_name).mcp_method("tools/call")
    }

    /// A model call: `operation` (`gen_ai.operation.name`, e.g. `chat`)
    /// on `model` (`gen_ai.request.model`).
    pub fn model_call(operation: &'a str, model: &'a str) -> Tool<'a> {
        Tool {
            operation: Some(operation),
            model: Some(model),
            ..Tool::empty()
        }
    }

    /// The tool call's id (`gen_ai.tool.call.id`); a permission with the
    /// same call id covers exactly this call.
    pub fn call_id(mut self, call_id: &'a str) -> Self {
        self.call_id = Some(call_id);
        self
    }

    /// The MCP method (`mcp.method.name`), e.g. `tools/call`.
    pub fn mcp_method(mut self, method: &'a str) -> Self {
        self.mcp_method = Some(method);
        self
    }

    /// The model requested (`gen_ai.request.model`), for a tool
    /// execution that names one.
    pub fn model(mut self, model: &'a str) -> Self {
        self.model = Some(model);
        self
    }

    /// The SHA-256 of the arguments, in hex (`args.sha256`). The raw
    /// arguments are not recorded.
    pub fn args_sha256(mut self, hex: &'a str) -> Self {
        self.args_sha256 = Some(hex);
        self
    }

    /// How long it took (`duration_ns`).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration_ns = Some(nanos(duration));
        self
    }

    /// Whether it succeeded (`status`).
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// Token usage of a model call (`gen_ai.usage.input_tokens`,
    /// `gen_ai.usage.output_tokens`, `gen_ai.usage.cached_tokens`).
    pub fn usage(mut self, input: u64, output: u64, cached: u64) -> Self {
        self.input_tokens = Some(input);
        self.output_tokens = Some(output);
        self.cached_tokens = Some(cached);
        self
    }

    /// Emits the point (INFO, whatever its status). An empty `trace_id`
    /// leaves the trace id to the enclosing span.
    pub fn emit(&self, trace_id: &str) {
        let trace_id = non_empty(trace_id);
        let status = self.status.map(Status::as_str);
        audit_event!(info, {
            { POINT_FIELD } = Point::Tool.as_str(),
            { f::TRACE_ID } = trace_id,
            { f::TOOL_NAME } = self.name,
            { f::OPERATION_NAME } = self.operation,
            { f::REQUEST_MODEL } = self.model,
            { f::TOOL_CALL_ID } = self.call_id,
            { f::MCP_METHOD_NAME } = self.mcp_method,
            { f::ARGS_SHA256 } = self.args_sha256,
            { f::DURATION_NS } = self.duration_ns,
            { f::STATUS } = status,
            { f::INPUT_TOKENS } = self.input_tokens,
            { f::OUTPUT_TOKENS } = self.output_tokens,
            { f::CACHED_TOKENS } = self.cached_tokens
        });
    }
}

/// The result point: how the request ended.
///
/// [`Trace::finish`] fills [`duration`](Finish::duration) with the
/// trace's age when it is not set.
///
/// ```
/// use ringtrail::audit::Finish;
///
/// let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
/// Finish::success().tokens_total(1_540).cost_micro_usd(2_310).emit(trace_id);
/// Finish::failure().error_type("timeout").emit(trace_id); // WARN
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a point does nothing until it is emitted"]
pub struct Finish<'a> {
    outcome: Outcome,
    error_type: Option<&'a str>,
    duration_ns: Option<u64>,
    tokens_total: Option<u64>,
    cost_micro_usd: Option<u64>,
}

impl<'a> Finish<'a> {
    /// A result with `outcome` (`outcome`).
    pub fn new(outcome: Outcome) -> Finish<'a> {
        Finish {
            outcome,
            error_type: None,
            duration_ns: None,
            tokens_total: None,
            cost_micro_usd: None,
        }
    }

    /// A `success`.
    pub fn success() -> Finish<'a> {
        Finish::new(Outcome::Success)
    }

    /// A `failure` (emitted at WARN); say which with
    /// [`error_type`](Finish::error_type).
    pub fn failure() -> Finish<'a> {
        Finish::new(Outcome::Failure)
    }

    /// An `abandoned` result (emitted at WARN), what a [`Trace`] dropped
    /// without [`finish`](Trace::finish) emits.
    pub fn abandoned() -> Finish<'a> {
        Finish::new(Outcome::Abandoned)
    }

    /// The outcome.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The error type of a failure (`error.type`), e.g. `timeout`.
    pub fn error_type(mut self, error_type: &'a str) -> Self {
        self.error_type = Some(error_type);
        self
    }

    /// The request's total duration (`duration_ns`).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration_ns = Some(nanos(duration));
        self
    }

    /// The request's total tokens (`tokens.total`).
    pub fn tokens_total(mut self, tokens: u64) -> Self {
        self.tokens_total = Some(tokens);
        self
    }

    /// The request's cost in micro-USD (`cost.micro_usd`): 1 USD is
    /// 1,000,000.
    pub fn cost_micro_usd(mut self, micro_usd: u64) -> Self {
        self.cost_micro_usd = Some(micro_usd);
        self
    }

    /// Emits the point: WARN for `failure` and `abandoned`, else INFO. An
    /// empty `trace_id` leaves the trace id to the enclosing span.
    pub fn emit(&self, trace_id: &str) {
        let trace_id = non_empty(trace_id);
        audit_event!(warn_if(self.outcome != Outcome::Success), {
            { POINT_FIELD } = Point::Result.as_str(),
            { f::TRACE_ID } = trace_id,
            { f::OUTCOME } = self.outcome.as_str(),
            { f::ERROR_TYPE } = self.error_type,
            { f::DURATION_NS } = self.duration_ns,
            { f::TOKENS_TOTAL } = self.tokens_total,
            { f::COST_MICRO_USD } = self.cost_micro_usd
        });
    }
}

/// The longest trace id a [`Trace`] keeps, in bytes; a longer one is cut
/// on a UTF-8 character boundary.
pub const MAX_TRACE_ID_LEN: usize = 64;

thread_local! {
    /// Per-thread generator of trace ids, seeded once per thread.
    static RNG: RefCell<Xorshift> = RefCell::new(seeded());
}

/// A generator seeded from the operating system, with a process-wide
/// counter mixed in so two threads never share a seed.
fn seeded() -> Xorshift {
    static THREADS: AtomicU64 = AtomicU64::new(0);
    let n = THREADS.fetch_add(1, Ordering::Relaxed);
    let seed = Xorshift::from_entropy().next_u64() ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Xorshift::new(seed)
}

/// A fresh trace id: 32 lowercase hex digits (128 bits, the W3C
/// `trace-id` format). Unique, not secret: the bits come from the
/// crate's non-cryptographic generator.
fn random_trace_id() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (hi, lo) = RNG
        .try_with(|rng| {
            let mut rng = rng.borrow_mut();
            (rng.next_u64(), rng.next_u64())
        })
        .unwrap_or_else(|_| {
            // Thread-local storage already torn down: seed a one-off.
            let mut rng = seeded();
            (rng.next_u64(), rng.next_u64())
        });
    let v = (u128::from(hi) << 64) | u128::from(lo);
    let mut out = [0u8; 32];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = HEX[((v >> (124 - 4 * i)) & 0xf) as usize];
    }
    out
}

/// A request-scoped audit trace: created with the identity, it carries
/// the trace id to every point, and records a result even when the
/// request does not.
///
/// - [`Trace::start`] makes a trace id (32 lowercase hex digits) and
///   emits the identity point; [`Trace::with_id`] takes the caller's id
///   (e.g. from a W3C `traceparent`).
/// - [`agent`](Trace::agent), [`permission`](Trace::permission) and
///   [`tool`](Trace::tool) emit the middle points, any number of times.
/// - [`finish`](Trace::finish) emits the result and ends the trace.
///   Dropped without it (an early return, `?`, a panic), the trace emits
///   a result with outcome `abandoned`, so the gap is visible.
///
/// The id is stored inline: no point allocates. A `Trace` is `Send` and
/// `Sync`, so it crosses `.await` points and threads. Points are ordinary
/// events: they belong to whatever span is current where they are
/// emitted. Open a span with the trace's id so plain logs join the trace.
///
/// A sync handler:
///
/// ```
/// use std::time::Instant;
/// use ringtrail::audit::{Agent, Finish, Identity, Permission, Status, Tool, Trace};
///
/// fn search(query: &str) -> Result<Vec<String>, std::io::Error> {
///     Ok(vec![format!("result for {query}")])
/// }
///
/// fn handle(user: &str, query: &str) -> Result<Vec<String>, std::io::Error> {
///     let trace = Trace::start(Identity::user(user).session("s-9").auth_method("oauth"));
///     // Plain logs inside this span get the trace's id too.
///     let span = tracing::info_span!("request", trace_id = trace.trace_id());
///     let _entered = span.enter();
///
///     trace.agent(Agent::new("planner").version("1.4.0").model("gpt-4o").provider("openai"));
///     trace.permission(Permission::allow("policy-7").tool("search").call_id("c1"));
///
///     let started = Instant::now();
///     let hits = search(query)?; // an error here leaves an `abandoned` result
///     trace.tool(
///         Tool::execution("search")
///             .call_id("c1")
///             .duration(started.elapsed())
///             .status(Status::Ok),
///     );
///     tracing::info!(hits = hits.len(), "search done");
///
///     trace.finish(Finish::success().cost_micro_usd(1_250));
///     Ok(hits)
/// }
///
/// assert_eq!(handle("u-1", "hotels").unwrap().len(), 1);
/// ```
///
/// An async handler on tokio: the trace is borrowed across `.await`
/// points, and the handler's future is `Send`, so it can be spawned.
///
/// ```
/// use ringtrail::audit::{Agent, Finish, Identity, Permission, Status, Tool, Trace};
/// use tracing::Instrument;
///
/// type BoxError = Box<dyn std::error::Error + Send + Sync>;
///
/// async fn chat(trace: &Trace, prompt: &str) -> Result<String, BoxError> {
///     trace.agent(Agent::new("assistant").model("gpt-4o").provider("openai"));
///     // Neither a tool name nor a call id: a blanket decision that
///     // covers every tool point after it.
///     trace.permission(Permission::allow("policy-7").scopes("chat"));
///     tokio::task::yield_now().await; // the model call, in real life
///     trace.tool(Tool::model_call("chat", "gpt-4o").usage(120, 48, 0).status(Status::Ok));
///     tracing::info!("model answered"); // a plain log, joined by the span's trace_id
///     Ok(format!("echo: {prompt}"))
/// }
///
/// async fn handle(user: &str, prompt: &str) -> Result<String, BoxError> {
///     let trace = Trace::start(Identity::user(user).client("web"));
///     let span = tracing::info_span!("chat", trace_id = trace.trace_id());
///     let reply = chat(&trace, prompt).instrument(span).await;
///     match &reply {
///         Ok(_) => trace.finish(Finish::success().tokens_total(168)),
///         Err(_) => trace.finish(Finish::failure().error_type("upstream")),
///     }
///     reply
/// }
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), BoxError> {
///     let reply = tokio::spawn(handle("u-1", "hello")).await??;
///     assert_eq!(reply, "echo: hello");
///     Ok(())
/// }
/// ```
#[must_use = "dropping a Trace at once records an `abandoned` result"]
pub struct Trace {
    id: [u8; MAX_TRACE_ID_LEN],
    len: u8,
    started: Instant,
    finished: bool,
}

impl Trace {
    /// Starts a trace with a fresh id and emits its identity point.
    pub fn start(identity: Identity<'_>) -> Trace {
        let mut id = [0u8; MAX_TRACE_ID_LEN];
        id[..32].copy_from_slice(&random_trace_id());
        Trace::begin(id, 32, identity)
    }

    /// Starts a trace with the caller's `trace_id` and emits its identity
    /// point. An id longer than [`MAX_TRACE_ID_LEN`] bytes is cut on a
    /// character boundary; an empty one leaves the trace id of every
    /// point to the enclosing span.
    pub fn with_id(trace_id: &str, identity: Identity<'_>) -> Trace {
        let n = crate::text::floor_char_boundary(trace_id, MAX_TRACE_ID_LEN);
        let mut id = [0u8; MAX_TRACE_ID_LEN];
        id[..n].copy_from_slice(&trace_id.as_bytes()[..n]);
        Trace::begin(id, n, identity)
    }

    fn begin(id: [u8; MAX_TRACE_ID_LEN], len: usize, identity: Identity<'_>) -> Trace {
        let trace = Trace {
            id,
            len: len as u8,
            started: Instant::now(),
            finished: false,
        };
        identity.emit(trace.trace_id());
        trace
    }

    /// The trace id every point carries.
    pub fn trace_id(&self) -> &str {
        // Always valid: a whole generated id or a prefix of a `&str` cut
        // on a character boundary.
        std::str::from_utf8(&self.id[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Time since the trace started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Emits an agent point.
    pub fn agent(&self, agent: Agent<'_>) {
        agent.emit(self.trace_id());
    }

    /// Emits a permission point.
    pub fn permission(&self, permission: Permission<'_>) {
        permission.emit(self.trace_id());
    }

    /// Emits a tool point.
    pub fn tool(&self, tool: Tool<'_>) {
        tool.emit(self.trace_id());
    }

    /// Emits the result point and ends the trace. Its `duration_ns` is
    /// the trace's age unless `result` sets one.
    pub fn finish(mut self, result: Finish<'_>) {
        let result = match result.duration_ns {
            Some(_) => result,
            None => result.duration(self.elapsed()),
        };
        self.finished = true;
        result.emit(self.trace_id());
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        // Also while unwinding: the abandoned result is the point.
        if !self.finished {
            Finish::abandoned()
                .duration(self.elapsed())
                .emit(self.trace_id());
        }
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("trace_id", &self.trace_id())
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    use super::*;

    /// One captured event.
    #[derive(Debug, Clone)]
    struct Captured {
        target: String,
        level: tracing::Level,
        fields: Vec<(String, String)>,
    }

    impl Captured {
        fn get(&self, name: &str) -> Option<&str> {
            self.fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        fn names(&self) -> Vec<&str> {
            self.fields.iter().map(|(n, _)| n.as_str()).collect()
        }

        fn point(&self) -> Point {
            Point::from_name(self.get(POINT_FIELD).expect("audit.point")).expect("a point name")
        }

        /// Asserts the event keeps the wire contract.
        fn assert_contract(&self) {
            assert_eq!(self.target, TARGET);
            let point = self.point();
            for name in self.names() {
                assert!(
                    point.is_contract_field(name),
                    "{point}: `{name}` is not in the contract"
                );
            }
            let mut unique = self.names();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), self.fields.len(), "a field twice");
            let from_span = point == Point::Identity && self.get(f::USER_ID).is_none();
            if !from_span {
                assert!(
                    point.has_required(|n| self.get(n).is_some()),
                    "{point}: a required field is missing in {:?}",
                    self.fields
                );
            }
        }
    }

    struct Visitor(Vec<(String, String)>);

    impl Visit for Visitor {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push((field.name().to_owned(), value.to_owned()));
        }

        fn record_u64(&mut self, field: &Field, value: u64) {
            self.0.push((field.name().to_owned(), value.to_string()));
        }

        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Captured>>>);

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut visitor = Visitor(Vec::new());
            event.record(&mut visitor);
            self.0.lock().unwrap().push(Captured {
                target: event.metadata().target().to_owned(),
                level: *event.metadata().level(),
                fields: visitor.0,
            });
        }
    }

    /// The events `f` emits, each checked against the contract.
    fn capture(f: impl FnOnce()) -> Vec<Captured> {
        let layer = Capture::default();
        let subscriber = tracing_subscriber::registry().with(layer.clone());
        tracing::subscriber::with_default(subscriber, f);
        let events = layer.0.lock().unwrap().clone();
        for e in &events {
            e.assert_contract();
        }
        events
    }

    fn points(events: &[Captured]) -> Vec<Point> {
        events.iter().map(Captured::point).collect()
    }

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// Every builder with every field set, through a `Trace`.
    fn full_trace() {
        let trace = Trace::with_id(
            "t-full",
            Identity::user("u-1")
                .session("s-9")
                .client("web")
                .tenant("acme")
                .auth_method("oauth")
                .source_ip("10.0.0.8"),
        );
        trace.agent(
            Agent::new("planner")
                .name("Planner")
                .version("1.4.0")
                .model("gpt-4o")
                .provider("openai")
                .prompt_template("plan", "7")
                .mcp_server("tools"),
        );
        trace.permission(
            Permission::needs_approval("policy-7")
                .policy_version("3")
                .reason("risky")
                .scopes("search:read")
                .tool("search")
                .call_id("c1"),
        );
        trace.permission(
            Permission::approved("policy-7")
                .approver("alice")
                .call_id("c1"),
        );
        trace.tool(
            Tool::mcp("search")
                .call_id("c1")
                .model("embed-3")
                .args_sha256(SHA)
                .duration(Duration::from_micros(1_500))
                .status(Status::Ok),
        );
        trace.tool(
            Tool::model_call("chat", "gpt-4o")
                .usage(100, 20, 64)
                .status(Status::Error),
        );
        trace.finish(
            Finish::failure()
                .error_type("timeout")
                .duration(Duration::from_millis(3))
                .tokens_total(120)
                .cost_micro_usd(2_310),
        );
    }

    #[test]
    fn a_full_trace_keeps_the_contract() {
        let events = capture(full_trace);
        assert_eq!(
            points(&events),
            [
                Point::Identity,
                Point::Agent,
                Point::Permission,
                Point::Permission,
                Point::Tool,
                Point::Tool,
                Point::Result
            ]
        );
        for e in &events {
            assert_eq!(e.get(f::TRACE_ID), Some("t-full"));
            assert_eq!(e.names()[..2], [POINT_FIELD, f::TRACE_ID]);
        }
        // Every contract name is written by some builder.
        let written: BTreeSet<&str> = events.iter().flat_map(|e| e.names()).collect();
        let mut contract: BTreeSet<&str> = f::ALL.iter().copied().collect();
        contract.insert(POINT_FIELD);
        assert_eq!(written, contract);

        let [id, agent, ask, ok, exec, call, result] = &events[..] else {
            unreachable!()
        };
        assert_eq!(id.get(f::SOURCE_IP), Some("10.0.0.8"));
        assert_eq!(id.get(f::TENANT_ID), Some("acme"));
        assert_eq!(agent.get(f::PROMPT_TEMPLATE_VERSION), Some("7"));
        assert_eq!(agent.get(f::PROVIDER_NAME), Some("openai"));
        assert_eq!(ask.get(f::DECISION), Some("needs_approval"));
        assert_eq!(ask.get(f::TOOL_NAME), Some("search"));
        assert_eq!(ok.get(f::DECISION), Some("approved"));
        assert_eq!(ok.get(f::APPROVER), Some("alice"));
        assert_eq!(ok.get(f::TOOL_NAME), None);
        assert_eq!(exec.get(f::MCP_METHOD_NAME), Some("tools/call"));
        assert_eq!(exec.get(f::DURATION_NS), Some("1500000"));
        assert_eq!(exec.get(f::STATUS), Some("ok"));
        assert_eq!(exec.get(f::ARGS_SHA256), Some(SHA));
        assert_eq!(call.get(f::OPERATION_NAME), Some("chat"));
        assert_eq!(call.get(f::TOOL_NAME), None);
        assert_eq!(call.get(f::REQUEST_MODEL), Some("gpt-4o"));
        assert_eq!(call.get(f::CACHED_TOKENS), Some("64"));
        assert_eq!(call.get(f::STATUS), Some("error"));
        assert_eq!(result.get(f::OUTCOME), Some("failure"));
        assert_eq!(result.get(f::DURATION_NS), Some("3000000"));
        assert_eq!(result.get(f::COST_MICRO_USD), Some("2310"));
        for e in &events {
            let warn = e.point() == Point::Result;
            let level = if warn {
                tracing::Level::WARN
            } else {
                tracing::Level::INFO
            };
            assert_eq!(e.level, level, "{:?}", e.point());
        }
    }

    #[test]
    fn unset_fields_are_not_recorded() {
        let events = capture(|| {
            Identity::user("u-1").emit("t");
            Agent::new("a").emit("t");
            Permission::allow("p").emit("t");
            Tool::execution("search").emit("t");
            Tool::model_call("chat", "m").emit("t");
            Finish::success().emit("t");
        });
        let names: Vec<Vec<&str>> = events.iter().map(Captured::names).collect();
        assert_eq!(
            names,
            [
                vec![POINT_FIELD, f::TRACE_ID, f::USER_ID],
                vec![POINT_FIELD, f::TRACE_ID, f::AGENT_ID],
                vec![POINT_FIELD, f::TRACE_ID, f::DECISION, f::POLICY_ID],
                vec![POINT_FIELD, f::TRACE_ID, f::TOOL_NAME],
                vec![
                    POINT_FIELD,
                    f::TRACE_ID,
                    f::OPERATION_NAME,
                    f::REQUEST_MODEL
                ],
                vec![POINT_FIELD, f::TRACE_ID, f::OUTCOME],
            ]
        );
    }

    #[test]
    fn an_empty_trace_id_is_left_to_the_span() {
        let events = capture(|| {
            Identity::from_span().emit("");
            let trace = Trace::with_id("", Identity::from_span());
            trace.tool(Tool::execution("x"));
        });
        assert_eq!(events.len(), 4, "identity, identity, tool, abandoned");
        for e in &events {
            assert_eq!(e.get(f::TRACE_ID), None);
            assert_eq!(e.get(f::USER_ID), None);
        }
    }

    #[test]
    fn levels() {
        let events = capture(|| {
            for d in Decision::ALL {
                Permission::new(*d, "p").emit("t");
            }
            for o in Outcome::ALL {
                Finish::new(*o).emit("t");
            }
            Tool::execution("x").status(Status::Error).emit("t");
        });
        let levels: Vec<tracing::Level> = events.iter().map(|e| e.level).collect();
        use tracing::Level as L;
        assert_eq!(
            levels,
            [
                L::INFO,
                L::WARN,
                L::INFO,
                L::INFO,
                L::INFO,
                L::WARN,
                L::WARN,
                L::INFO
            ]
        );
    }

    #[test]
    fn a_dropped_trace_is_abandoned() {
        fn fails(trace: &Trace) -> Result<(), &'static str> {
            trace.tool(Tool::execution("search"));
            Err("boom")
        }
        fn handler() -> Result<(), &'static str> {
            let trace = Trace::with_id("t-early", Identity::user("u"));
            fails(&trace)?;
            trace.finish(Finish::success());
            Ok(())
        }
        let events = capture(|| assert!(handler().is_err()));
        assert_eq!(
            points(&events),
            [Point::Identity, Point::Tool, Point::Result]
        );
        let result = &events[2];
        assert_eq!(result.get(f::OUTCOME), Some("abandoned"));
        assert_eq!(result.get(f::TRACE_ID), Some("t-early"));
        assert!(result.get(f::DURATION_NS).is_some());
        assert_eq!(result.level, tracing::Level::WARN);
    }

    #[test]
    fn a_finished_trace_emits_one_result_with_its_age() {
        let events = capture(|| {
            let trace = Trace::with_id("t", Identity::user("u"));
            trace.finish(Finish::success());
        });
        assert_eq!(points(&events), [Point::Identity, Point::Result]);
        assert_eq!(events[1].get(f::OUTCOME), Some("success"));
        assert!(events[1].get(f::DURATION_NS).is_some(), "filled by finish");
    }

    #[test]
    fn a_panic_leaves_an_abandoned_result() {
        let events = capture(|| {
            let unwound = std::panic::catch_unwind(|| {
                let trace = Trace::with_id("t-panic", Identity::user("u"));
                trace.agent(Agent::new("a"));
                panic!("handler failed");
            });
            assert!(unwound.is_err());
        });
        assert_eq!(
            points(&events),
            [Point::Identity, Point::Agent, Point::Result]
        );
        assert_eq!(events[2].get(f::OUTCOME), Some("abandoned"));
        assert_eq!(events[2].get(f::TRACE_ID), Some("t-panic"));
    }

    #[test]
    fn generated_ids_are_32_lowercase_hex_and_distinct() {
        let mut ids = Vec::new();
        let events = capture(|| {
            for _ in 0..1_000 {
                let trace = Trace::start(Identity::user("u"));
                ids.push(trace.trace_id().to_owned());
                trace.finish(Finish::success());
            }
        });
        assert_eq!(events.len(), 2_000);
        for (id, pair) in ids.iter().zip(events.chunks(2)) {
            assert_eq!(id.len(), 32);
            assert!(
                id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
            assert_eq!(pair[0].get(f::TRACE_ID), Some(id.as_str()));
            assert_eq!(pair[1].get(f::TRACE_ID), Some(id.as_str()));
        }
        let other: Vec<[u8; 32]> =
            std::thread::spawn(|| (0..1_000).map(|_| random_trace_id()).collect())
                .join()
                .unwrap();
        let mut all: BTreeSet<String> = ids.into_iter().collect();
        for id in other {
            all.insert(String::from_utf8(id.to_vec()).unwrap());
        }
        assert_eq!(all.len(), 2_000, "no repeats across threads");
    }

    #[test]
    fn caller_ids_are_cut_on_a_character_boundary() {
        let _ = capture(|| {
            let long = "a".repeat(70);
            let t = Trace::with_id(&long, Identity::user("u"));
            assert_eq!(t.trace_id(), &long[..64]);
            t.finish(Finish::success());

            let euro = format!("ab{}", "€".repeat(30));
            let t = Trace::with_id(&euro, Identity::user("u"));
            assert_eq!(t.trace_id().len(), 62);
            assert_eq!(t.trace_id(), &euro[..62]);
            t.finish(Finish::success());

            let t = Trace::with_id("4bf92f35", Identity::user("u"));
            assert_eq!(t.trace_id(), "4bf92f35");
            assert!(format!("{t:?}").contains("4bf92f35"));
            t.finish(Finish::success());
        });
    }

    #[test]
    fn a_trace_crosses_threads_and_awaits() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let trace = Trace::with_id("t", Identity::user("u"));
        send_sync(&trace);
        // A future that holds and borrows a trace across an await is Send.
        let future = async {
            let trace = Trace::with_id("t2", Identity::user("u"));
            std::future::ready(()).await;
            trace.tool(Tool::execution("x"));
            std::future::ready(()).await;
            trace.finish(Finish::success());
        };
        send(&future); // never polled: it emits nothing
        std::thread::spawn(move || trace.finish(Finish::success()))
            .join()
            .unwrap();
    }

    #[test]
    fn builders_are_small_and_copy() {
        fn copy<T: Copy>() {}
        copy::<Identity<'_>>();
        copy::<Agent<'_>>();
        copy::<Permission<'_>>();
        copy::<Tool<'_>>();
        copy::<Finish<'_>>();
        assert_eq!(Permission::deny("p").decision(), Decision::Deny);
        assert_eq!(Finish::abandoned().outcome(), Outcome::Abandoned);
    }
}
