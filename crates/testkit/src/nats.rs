//! A real NATS JetStream cluster on loopback (feature `nats`): `n`
//! `nats-server` processes with JetStream on file storage in a temporary
//! directory, routed to each other, for the scale-out tests and bench.
//! Nodes can be killed (`SIGKILL`) and restarted on the same ports and
//! store, and the stream's leader found.
//!
//! The binary is `$NATS_SERVER`, else `nats-server` on `PATH` (`.ci/run`
//! installs it). Every server dies with the test: `Drop` kills them, and
//! each is started with `PR_SET_PDEATHSIG`, so even a test process killed
//! outright leaves none behind.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One server of the cluster.
struct Node {
    name: String,
    port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// A running JetStream cluster (see the module docs).
pub struct NatsCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `nats-server` binary.
pub fn binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned())
}

impl NatsCluster {
    /// Starts `n` servers (1 for a lone server, 3 for a replicated
    /// stream) and waits until JetStream answers on each.
    pub fn start(n: usize) -> NatsCluster {
        let dir = std::env::temp_dir().join(format!(
            "ringtrail-nats-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("the cluster's directory");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster)| format!("\"nats-route://127.0.0.1:{cluster}\""))
            .collect();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, (port, cluster))| {
                let name = format!("n{i}");
                let store = dir.join(&name);
                let mut text = format!(
                    "server_name: \"{name}\"\nlisten: \"127.0.0.1:{port}\"\n\
                     jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 4GB\n}}\n",
                    store.display()
                );
                if n > 1 {
                    text.push_str(&format!(
                        "cluster {{\n  name: \"ringtrail-test\"\n  listen: \"127.0.0.1:{cluster}\"\n  routes: [{}]\n}}\n",
                        routes.join(", ")
                    ));
                }
                let config = dir.join(format!("{name}.conf"));
                std::fs::write(&config, text).expect("a server's config");
                Node {
                    name,
                    port: *port,
                    config,
                    child: None,
                }
            })
            .collect();
        let mut cluster = NatsCluster { dir, nodes };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster.wait_ready();
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut command = Command::new(binary());
        command
            .arg("-c")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: the closure runs in the child between fork and exec
            // and only makes one async-signal-safe system call (prctl).
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (install nats-server): {e}", binary()));
        node.child = Some(child);
    }

    /// Every server's client URL, comma-separated: what `Builder::nats`
    /// and `ringtrail sink --nats` take.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills server `i` outright (`SIGKILL`), as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again, on its ports and store, and waits until it
    /// takes connections.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        wait_port(self.nodes[i].port);
    }

    /// Waits until every running server takes connections and JetStream
    /// answers (a meta leader is elected).
    pub fn wait_ready(&self) {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            wait_port(node.port);
        }
        let urls = self.urls();
        let runtime = runtime();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Ready when a stream with a replica on every server can be
            // placed: every peer has joined.
            let replicas = self.nodes.len();
            let ready = runtime.block_on(async {
                let client = async_nats::connect(urls.split(',').collect::<Vec<_>>())
                    .await
                    .ok()?;
                let js = async_nats::jetstream::new(client);
                js.query_account().await.ok()?;
                let probe = async_nats::jetstream::stream::Config {
                    name: "RINGTRAIL_TESTKIT_READY".to_owned(),
                    subjects: vec!["ringtrail.testkit.ready".to_owned()],
                    num_replicas: replicas,
                    ..Default::default()
                };
                js.get_or_create_stream(probe).await.ok()?;
                js.delete_stream("RINGTRAIL_TESTKIT_READY").await.ok()
            });
            if ready.is_some() {
                return;
            }
            assert!(Instant::now() < deadline, "JetStream never became ready");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The index of the server leading `stream`'s replicas, once it has one.
    pub fn leader_of(&self, stream: &str) -> usize {
        let urls = self.urls();
        let runtime = runtime();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let leader = runtime.block_on(async {
                let client = async_nats::connect(urls.split(',').collect::<Vec<_>>())
                    .await
                    .ok()?;
                let js = async_nats::jetstream::new(client);
                let mut stream = js.get_stream(stream).await.ok()?;
                let info = stream.info().await.ok()?;
                info.cluster.as_ref()?.leader.clone()
            });
            if let Some(i) = leader.and_then(|l| self.nodes.iter().position(|n| n.name == l)) {
                return i;
            }
            assert!(Instant::now() < deadline, "{stream} has no leader");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The stream's replicas, its messages now, and its duplicate window:
    /// `(replicas, messages, window)`.
    pub fn stream_state(&self, stream: &str) -> (usize, u64, Duration) {
        let urls = self.urls();
        runtime().block_on(async {
            let client = async_nats::connect(urls.split(',').collect::<Vec<_>>())
                .await
                .expect("connect");
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream(stream).await.expect("the stream");
            let info = stream.info().await.expect("its info");
            (
                info.config.num_replicas,
                info.state.messages,
                info.config.duplicate_window,
            )
        })
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server on {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
