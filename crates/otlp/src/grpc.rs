//! OTLP/gRPC: `LogsService/Export` and `TraceService/Export`, gzip
//! accepted and sent, the body bound enforced on the decompressed
//! message, the token checked on the `authorization` metadata.
//!
//! | status | when |
//! |---|---|
//! | `OK` (with `partial_success` when some were refused) | as OTLP/HTTP's 200 |
//! | `INVALID_ARGUMENT` | a message that does not decode |
//! | `UNAUTHENTICATED` | no or a wrong bearer token |
//! | `OUT_OF_RANGE`, `RESOURCE_EXHAUSTED` | a message over `--max-body` as sent, or once inflated (tonic's checks) |
//! | `UNAVAILABLE` | the ring is full, the bounds are reached, or shutting down: nothing was enqueued; exporters retry it |

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::auth::Token;
use crate::map::value::OwnedRow;
use crate::receiver::{Receiver, Taken};

/// The two services, sharing a receiver.
#[derive(Clone)]
pub struct Services {
    receiver: Arc<Receiver>,
}

/// The gRPC router: both services behind the token check.
pub fn router(receiver: Arc<Receiver>, token: Option<Token>, max_body: usize) -> axum::Router {
    let services = Services { receiver };
    let check = move |request: Request<()>| -> Result<Request<()>, Status> {
        match &token {
            Some(token) => {
                let given = request
                    .metadata()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok());
                match token.accepts(given) {
                    true => Ok(request),
                    false => Err(Status::unauthenticated("missing or invalid bearer token")),
                }
            }
            None => Ok(request),
        }
    };
    let logs = LogsServiceServer::new(services.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_body);
    let traces = TraceServiceServer::new(services)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_body);
    tonic::service::Routes::new(tonic::service::interceptor::InterceptedService::new(
        logs,
        check.clone(),
    ))
    .add_service(tonic::service::interceptor::InterceptedService::new(
        traces, check,
    ))
    .into_axum_router()
}

impl Services {
    /// Pushes `rows`; `Ok(rejected)` or the status that refused them all.
    async fn take(&self, rows: &[OwnedRow], bytes: usize) -> Result<i64, Status> {
        let Some(mut admitted) = self.receiver.admit() else {
            return Err(Status::unavailable(
                "too many requests in flight; retry later",
            ));
        };
        if !self
            .receiver
            .reserve(&mut admitted, bytes.saturating_mul(2))
        {
            return Err(Status::unavailable("too many bytes in flight; retry later"));
        }
        match self.receiver.take(rows).await {
            Taken::All => Ok(0),
            Taken::Part { rejected, .. } => Ok(rejected as i64),
            Taken::Busy => Err(Status::unavailable("the ring is full; retry later")),
            Taken::Closed => Err(Status::unavailable("shutting down")),
        }
    }
}

fn message(rejected: i64) -> String {
    match rejected {
        0 => String::new(),
        n => format!("the ring had no room for the last {n} rows"),
    }
}

#[tonic::async_trait]
impl LogsService for Services {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let request = request.into_inner();
        let bytes = request.encoded_len();
        let rows = crate::map::logs(request, crate::now_unix_nanos());
        let rejected = self.take(&rows, bytes).await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message(rejected),
            }),
        }))
    }
}

#[tonic::async_trait]
impl TraceService for Services {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let request = request.into_inner();
        let bytes = request.encoded_len();
        let rows = crate::map::traces(request);
        let rejected = self.take(&rows, bytes).await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message(rejected),
            }),
        }))
    }
}
