//! NATS JetStream as the bus: [`NatsTarget`] (servers and stream), the
//! stream's creation, [`NatsPublisher`] and [`NatsSubscriber`].
//!
//! **The stream** `<name>` takes the subjects `<name>.shard.*`, one per
//! shard. It is created when missing: file storage, 3 replicas when the
//! cluster has 3 or more servers (else 1), a deduplication window of
//! [`DUPLICATE_WINDOW`], and work-queue retention, so a message is
//! removed once its worker has acknowledged it: the stream is a buffer
//! between producers and PostgreSQL, not an archive. An existing stream
//! is used as it is.
//!
//! **Publishing** sets `Nats-Msg-Id` to the message's id (a batch id), so
//! a publish repeated after a lost acknowledgement is dropped by the
//! stream within the window; past it, the shard's ledger still recognises
//! the batch, so the load stays exactly once.
//!
//! **Consuming**: one durable pull consumer per shard,
//! `ringtrail-shard-<i>`, with explicit acknowledgement, shared by every
//! worker of the shard. A message is delivered to one worker at a time;
//! one not acknowledged within the ack wait (a killed worker) goes to
//! another.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream, AckKind};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{Published, Publisher, Received, Subscriber};
use crate::thread::{mark_own, OwnThread};
use crate::{Error, Result};

/// How long the stream remembers a message id to drop a repeat of it.
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Replicas of the stream on a cluster of at least that many servers.
const REPLICAS: usize = 3;

/// How long a worker waits at start for a cluster that answers but cannot
/// place the stream yet (still forming).
const CLUSTER_FORMING: Duration = Duration::from_secs(60);

/// Where batches go for scale-out: NATS servers and a JetStream stream,
/// as [`Builder::nats`](crate::Builder::nats), `ringtrail sink` and
/// `ringtrail serve --nats` take them.
///
/// ```
/// use ringtrail::transport::NatsTarget;
///
/// let target = NatsTarget::new("nats://10.0.0.1:4222,nats://10.0.0.2:4222", "AUDIT")?;
/// assert_eq!(target.servers().len(), 2);
/// assert_eq!(target.subject(1), "AUDIT.shard.1");
/// assert!(NatsTarget::new("nats://h:4222", "has.dot").is_err());
/// # Ok::<(), ringtrail::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct NatsTarget {
    servers: Vec<String>,
    stream: String,
}

impl fmt::Debug for NatsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A URL may carry a user and password: show the hosts only.
        let hosts: Vec<&str> = self
            .servers
            .iter()
            .map(|s| s.rsplit_once('@').map_or(s.as_str(), |(_, host)| host))
            .collect();
        f.debug_struct("NatsTarget")
            .field("servers", &hosts)
            .field("stream", &self.stream)
            .finish()
    }
}

impl NatsTarget {
    /// `servers`: a comma-separated list of `nats://host:port` URLs (any
    /// server of the cluster will do; the client learns the others);
    /// `stream`: the JetStream stream's name (letters, digits, `-` and
    /// `_`). [`Error::Config`] when either is malformed.
    pub fn new(servers: &str, stream: &str) -> Result<NatsTarget> {
        let servers: Vec<String> = servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if servers.is_empty() {
            return Err(Error::Config("nats: no server given".to_owned()));
        }
        for server in &servers {
            let scheme_ok = ["nats://", "tls://"].iter().any(|p| server.starts_with(p));
            if !scheme_ok || async_nats::ServerAddr::from_str(server).is_err() {
                return Err(Error::Config(format!(
                    "nats: `{}` is not a nats://host:port URL",
                    server.rsplit_once('@').map_or(server.as_str(), |(_, h)| h)
                )));
            }
        }
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if stream.is_empty() || stream.len() > 255 || !stream.chars().all(valid) {
            return Err(Error::Config(format!(
                "nats: the stream name `{}` must be 1 to 255 letters, digits, `-` or `_`",
                stream.escape_debug()
            )));
        }
        Ok(NatsTarget {
            servers,
            stream: stream.to_owned(),
        })
    }

    /// The servers, as given.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The subject of shard `shard`'s messages: `<stream>.shard.<shard>`.
    pub fn subject(&self, shard: u32) -> String {
        format!("{}.shard.{shard}", self.stream)
    }

    /// The durable consumer every worker of shard `shard` shares.
    pub fn consumer(&self, shard: u32) -> String {
        format!("ringtrail-shard-{shard}")
    }
}

fn transport(what: &'static str) -> impl FnOnce(async_nats::Error) -> Error {
    move |source| Error::Transport { what, source }
}

fn boxed<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl FnOnce(E) -> Error {
    move |e| Error::Transport {
        what,
        source: Box::new(e),
    }
}

fn timed_out(what: &'static str) -> Error {
    Error::Transport {
        what,
        source: "no answer in time".into(),
    }
}

/// The client and its runtime, shared by the publisher and subscriber.
struct Session {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
    js: jetstream::Context,
    target: NatsTarget,
    stall: Duration,
}

impl Session {
    /// Connects within `stall`. With `background`, a failure to connect is
    /// not an error: the client keeps trying on its own (a producer with a
    /// spool starts while NATS is down).
    fn connect(target: &NatsTarget, stall: Duration, background: bool) -> Result<Session> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(OwnThread::Nats.name())
            .on_thread_start(mark_own)
            .enable_all()
            .build()
            .map_err(Error::Io)?;
        let options = || {
            async_nats::ConnectOptions::new()
                .connection_timeout(stall)
                .request_timeout(Some(stall))
                .name("ringtrail")
                // Never give up: an outage ends some day.
                .max_reconnects(None)
        };
        let servers = target.servers.clone();
        let client = runtime.block_on(async {
            match options().connect(servers.clone()).await {
                Ok(client) => Ok(client),
                Err(e) if background => {
                    let _ = e;
                    options()
                        .retry_on_initial_connect()
                        .connect(servers)
                        .await
                        .map_err(boxed("connecting"))
                }
                Err(e) => Err(boxed("connecting")(e)),
            }
        })?;
        // The context spawns its acknowledgement task on the runtime.
        let mut js = {
            let _entered = runtime.enter();
            jetstream::new(client.clone())
        };
        js.set_timeout(stall);
        Ok(Session {
            runtime,
            client,
            js,
            target: target.clone(),
            stall,
        })
    }

    /// The stream, created when missing (see the module docs).
    async fn stream(&self) -> Result<stream::Stream> {
        let known = self
            .target
            .servers
            .len()
            .max(self.client.server_info().connect_urls.len());
        let replicas = if known >= REPLICAS { REPLICAS } else { 1 };
        let config = stream::Config {
            name: self.target.stream.clone(),
            subjects: vec![format!("{}.shard.*", self.target.stream)],
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .map_err(boxed("creating the stream"))
    }
}

/// Publishes batches (see [`Publisher`]).
pub(crate) struct NatsPublisher {
    session: Session,
    /// Whether the stream is known to exist.
    stream_ready: bool,
}

impl NatsPublisher {
    /// Connects and makes sure the stream exists. With `background` (a
    /// spool to fall back on), an unreachable server is not an error.
    pub(crate) fn connect(
        target: &NatsTarget,
        stall: Duration,
        background: bool,
    ) -> Result<NatsPublisher> {
        let session = Session::connect(target, stall, background)?;
        let mut publisher = NatsPublisher {
            session,
            stream_ready: false,
        };
        match publisher.ensure_stream(Instant::now() + stall) {
            Ok(()) => {}
            Err(_) if background => {}
            Err(e) => return Err(e),
        }
        Ok(publisher)
    }

    fn ensure_stream(&mut self, deadline: Instant) -> Result<()> {
        if self.stream_ready {
            return Ok(());
        }
        let session = &self.session;
        let wait = deadline.saturating_duration_since(Instant::now());
        session
            .runtime
            .block_on(async { tokio::time::timeout(wait, session.stream()).await })
            .map_err(|_| timed_out("creating the stream"))??;
        self.stream_ready = true;
        Ok(())
    }
}

impl Publisher for NatsPublisher {
    fn publish(
        &mut self,
        shard: u32,
        id: &str,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Published> {
        self.ensure_stream(deadline)?;
        let subject = self.session.target.subject(shard);
        let js = &self.session.js;
        let wait = deadline.saturating_duration_since(Instant::now());
        let message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(id);
        let acked = self.session.runtime.block_on(async {
            tokio::time::timeout(wait, async {
                let ack = js
                    .send_publish(subject, message)
                    .await
                    .map_err(boxed("publishing a batch"))?;
                ack.await.map_err(boxed("publishing a batch"))
            })
            .await
        });
        let ack = acked.map_err(|_| timed_out("publishing a batch"))??;
        Ok(Published {
            duplicate: ack.duplicate,
        })
    }

    fn max_payload(&self) -> usize {
        self.session.client.server_info().max_payload
    }
}

/// One shard's messages, through its durable consumer (see
/// [`Subscriber`]).
pub(crate) struct NatsSubscriber {
    session: Session,
    consumer: consumer::Consumer<consumer::pull::Config>,
    ack_wait: Duration,
}

/// A message held by a worker, with the task that tells the bus it is in
/// progress until it is settled.
pub(crate) struct NatsMessage {
    message: Arc<jetstream::Message>,
    payload: Bytes,
    delivered: u64,
    keepalive: tokio::task::JoinHandle<()>,
}

impl Received for NatsMessage {
    fn payload(&self) -> &Bytes {
        &self.payload
    }

    fn delivered(&self) -> u64 {
        self.delivered
    }
}

impl NatsSubscriber {
    /// Connects, makes sure the stream exists, and binds to shard
    /// `shard`'s durable consumer (created when missing). A message held
    /// past `ack_wait` without a word from its worker (a killed worker)
    /// goes to another.
    pub(crate) fn connect(
        target: &NatsTarget,
        shard: u32,
        stall: Duration,
        ack_wait: Duration,
    ) -> Result<NatsSubscriber> {
        let session = Session::connect(target, stall, false)?;
        let name = target.consumer(shard);
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: target.subject(shard),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            max_deliver: -1,
            ..Default::default()
        };
        let bind = || {
            session.runtime.block_on(async {
                let stream = session.stream().await?;
                tokio::time::timeout(
                    stall * 4,
                    stream.get_or_create_consumer(&name, config.clone()),
                )
                .await
                .map_err(|_| timed_out("creating the consumer"))?
                .map_err(boxed("creating the consumer"))
            })
        };
        // The servers answer, but a cluster that is still forming (its
        // peers not all known yet) cannot place a replicated stream:
        // wait for it, for a while.
        let started = Instant::now();
        let mut told = false;
        let consumer = loop {
            match bind() {
                Ok(consumer) => break consumer,
                Err(e) if started.elapsed() < CLUSTER_FORMING => {
                    if !std::mem::replace(&mut told, true) {
                        eprintln!(
                            "ringtrail: NATS JetStream not ready ({}); waiting for it",
                            e.chain()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        };
        Ok(NatsSubscriber {
            session,
            consumer,
            ack_wait,
        })
    }

    fn settle(&self, message: NatsMessage, kind: AckKind, what: &'static str) -> Result<()> {
        message.keepalive.abort();
        let stall = self.session.stall;
        self.session
            .runtime
            .block_on(async {
                tokio::time::timeout(stall, async {
                    match kind {
                        AckKind::Ack => message.message.double_ack().await,
                        other => message.message.ack_with(other).await,
                    }
                })
                .await
            })
            .map_err(|_| timed_out(what))?
            .map_err(transport(what))
    }
}

impl Subscriber for NatsSubscriber {
    type Message = NatsMessage;

    fn next(&mut self, wait: Duration) -> Result<Option<NatsMessage>> {
        let consumer = &self.consumer;
        let stall = self.session.stall;
        let fetched = self.session.runtime.block_on(async {
            let mut batch = consumer
                .fetch()
                .max_messages(1)
                .expires(wait)
                .messages()
                .await
                .map_err(boxed("fetching a batch"))?;
            match tokio::time::timeout(wait + stall, batch.next()).await {
                Err(_) | Ok(None) => Ok(None),
                Ok(Some(Ok(message))) => Ok(Some(message)),
                Ok(Some(Err(e))) => Err(transport("fetching a batch")(e)),
            }
        })?;
        let Some(message) = fetched else {
            return Ok(None);
        };
        let delivered = message.info().map(|i| i.delivered as u64).unwrap_or(1);
        let payload = message.payload.clone();
        let message = Arc::new(message);
        let every = (self.ack_wait / 3).max(Duration::from_millis(100));
        let held = message.clone();
        let keepalive = self.session.runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if held.ack_with(AckKind::Progress).await.is_err() {
                    return;
                }
            }
        });
        Ok(Some(NatsMessage {
            message,
            payload,
            delivered,
            keepalive,
        }))
    }

    fn ack(&mut self, message: NatsMessage) -> Result<()> {
        self.settle(message, AckKind::Ack, "acknowledging a batch")
    }

    fn release(&mut self, message: NatsMessage, delay: Duration) -> Result<()> {
        self.settle(message, AckKind::Nak(Some(delay)), "releasing a batch")
    }

    fn reject(&mut self, message: NatsMessage) -> Result<()> {
        self.settle(message, AckKind::Term, "rejecting a message")
    }

    fn lag(&mut self) -> Result<u64> {
        let stall = self.session.stall;
        let consumer = &mut self.consumer;
        let pending = self
            .session
            .runtime
            .block_on(async {
                tokio::time::timeout(stall, async {
                    consumer.info().await.map(|info| info.num_pending)
                })
                .await
            })
            .map_err(|_| timed_out("reading the consumer's lag"))?
            .map_err(boxed("reading the consumer's lag"))?;
        Ok(pending)
    }
}
