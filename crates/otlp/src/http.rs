//! OTLP/HTTP: `POST /v1/logs`, `POST /v1/traces`, `GET /healthz`.
//!
//! | answer | when |
//! |---|---|
//! | 200 + `Export…ServiceResponse` (in the request's encoding) | every record enqueued; or some, with `partial_success` counting exactly the rest |
//! | 400 | a body that does not decode |
//! | 401 | no or a wrong bearer token |
//! | 404 | another path |
//! | 405 | another method |
//! | 413 | a body over `--max-body`, as sent or decompressed |
//! | 415 | a content type other than `application/x-protobuf` or `application/json`, or an encoding other than gzip |
//! | 429 + `Retry-After` | the ring is full, or the concurrency or in-flight bounds are reached: nothing was enqueued |
//! | 503 + `Retry-After` | shutting down: nothing was enqueued |
//!
//! Error bodies are a `google.rpc.Status`, in the request's encoding.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, Limited};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::auth::Token;
use crate::map::value::OwnedRow;
use crate::receiver::{Receiver, Taken};
use crate::wire::{decompress, BodyError, Encoding, Status};

/// Seconds a client is told to wait after a 429 or 503.
pub const RETRY_AFTER_SECS: u32 = 1;

/// What the HTTP handlers share.
pub struct HttpState {
    /// Admission and the push.
    pub receiver: Arc<Receiver>,
    /// The bearer token, if one is required.
    pub token: Option<Token>,
    /// `--max-body`.
    pub max_body: usize,
}

/// The OTLP/HTTP routes (and the health check) over `state`.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/v1/logs", post(logs))
        .route("/v1/traces", post(traces))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
}

/// Only `/healthz` (200: nothing to be unhealthy about) and the 404
/// fallback: the listener of `ringtrail serve --read-only`, which adds
/// the console's routes.
pub fn read_only_router() -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { (StatusCode::OK, "ok (read-only)\n") }),
        )
        .fallback(not_found)
}

async fn healthz(State(state): State<Arc<HttpState>>) -> Response {
    match state.receiver.healthy() {
        true => (StatusCode::OK, "ok\n").into_response(),
        false => (StatusCode::SERVICE_UNAVAILABLE, "not taking records\n").into_response(),
    }
}

async fn not_found(method: Method) -> Response {
    let _ = method;
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// The body's encoding on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// One OTLP signal: how its request decodes and maps, and its answer.
trait Signal: Message + Default + serde::de::DeserializeOwned {
    type Response: Message;
    fn rows(self, received: i64) -> Vec<OwnedRow>;
    fn response(rejected: i64, message: String) -> Self::Response;
    /// The JSON name of the rejected count in `partial_success`.
    const REJECTED: &'static str;
}

impl Signal for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;
    const REJECTED: &'static str = "rejectedLogRecords";
    fn rows(self, received: i64) -> Vec<OwnedRow> {
        crate::map::logs(self, received)
    }
    fn response(rejected: i64, message: String) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message,
            }),
        }
    }
}

impl Signal for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;
    const REJECTED: &'static str = "rejectedSpans";
    fn rows(self, _received: i64) -> Vec<OwnedRow> {
        crate::map::traces(self)
    }
    fn response(rejected: i64, message: String) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message,
            }),
        }
    }
}

async fn logs(State(state): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    export::<ExportLogsServiceRequest>(&state, &headers, body).await
}

async fn traces(State(state): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    export::<ExportTraceServiceRequest>(&state, &headers, body).await
}

/// An error answer: `google.rpc.Status` in `format`.
fn error(status: StatusCode, format: Format, code: i32, message: impl Into<String>) -> Response {
    let status_body = Status {
        code,
        message: message.into(),
    };
    let body = match format {
        Format::Protobuf => status_body.encode_to_vec(),
        Format::Json => serde_json::json!({"code": code, "message": status_body.message})
            .to_string()
            .into_bytes(),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}

// google.rpc.Code values.
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAUTHENTICATED: i32 = 16;
const UNAVAILABLE: i32 = 14;
const UNIMPLEMENTED: i32 = 12;

async fn export<S: Signal>(state: &HttpState, headers: &HeaderMap, body: Body) -> Response {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let media = text(header::CONTENT_TYPE)
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let format = match media.as_deref() {
        Some("application/x-protobuf") | Some("application/protobuf") => Format::Protobuf,
        Some("application/json") => Format::Json,
        _ => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Format::Json,
                UNIMPLEMENTED,
                "content type must be application/x-protobuf or application/json",
            )
        }
    };
    if let Some(token) = &state.token {
        if !token.accepts(text(header::AUTHORIZATION)) {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                format,
                UNAUTHENTICATED,
                "missing or invalid bearer token",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ringtrail\""),
            );
            return response;
        }
    }
    let Some(encoding) = Encoding::from_header(text(header::CONTENT_ENCODING)) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format,
            UNIMPLEMENTED,
            "content encoding must be gzip or none",
        );
    };
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format,
            INVALID_ARGUMENT,
            format!("body larger than --max-body ({} bytes)", state.max_body),
        )
    };
    let declared = text(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body as u64) {
        return too_large();
    }
    let busy = |why: &str| {
        error(
            StatusCode::TOO_MANY_REQUESTS,
            format,
            RESOURCE_EXHAUSTED,
            format!("{why}; retry later"),
        )
    };
    let Some(mut admitted) = state.receiver.admit() else {
        return busy("too many requests in flight");
    };
    let sent: Bytes = match Limited::new(body, state.max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format,
                INVALID_ARGUMENT,
                format!("cannot read the body: {e}"),
            )
        }
    };
    // The bound on bytes in flight: what the request holds while decoded
    // (sent, inflated, and the decoded messages, about twice again).
    if !state
        .receiver
        .reserve(&mut admitted, sent.len().saturating_mul(3))
    {
        return busy("too many bytes in flight");
    }
    let raw = match decompress(&sent, encoding, state.max_body) {
        Ok(raw) => raw,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Corrupt(why)) => {
            return error(StatusCode::BAD_REQUEST, format, INVALID_ARGUMENT, why)
        }
    };
    drop(sent);
    if encoding != Encoding::Identity && !state.receiver.reserve(&mut admitted, raw.len() * 3) {
        return busy("too many bytes in flight");
    }
    let request = match format {
        Format::Protobuf => S::decode(raw.as_slice()).map_err(|e| e.to_string()),
        Format::Json => serde_json::from_slice::<S>(&raw).map_err(|e| e.to_string()),
    };
    let request = match request {
        Ok(r) => r,
        Err(why) => {
            return error(
                StatusCode::BAD_REQUEST,
                format,
                INVALID_ARGUMENT,
                format!("malformed OTLP request: {why}"),
            )
        }
    };
    drop(raw);
    let rows = request.rows(crate::now_unix_nanos());
    let (rejected, message) = match state.receiver.take(&rows).await {
        Taken::All => (0, String::new()),
        Taken::Part { taken, rejected } => (
            rejected as i64,
            format!(
                "the ring had no room for the last {rejected} of {} rows",
                taken + rejected
            ),
        ),
        Taken::Busy => return busy("the ring is full"),
        Taken::Closed => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format,
                UNAVAILABLE,
                "shutting down",
            )
        }
    };
    drop(admitted);
    let body = match format {
        Format::Protobuf => S::response(rejected, message).encode_to_vec(),
        // Proto3 JSON: an int64 as a string, an unset message left out.
        Format::Json if rejected == 0 => b"{}".to_vec(),
        Format::Json => serde_json::json!({
            "partialSuccess": {S::REJECTED: rejected.to_string(), "errorMessage": message}
        })
        .to_string()
        .into_bytes(),
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}
