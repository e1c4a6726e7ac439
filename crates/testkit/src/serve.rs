//! A running `ringtrail serve` for the CLI's tests, and `curl` to talk
//! to it: real requests, never a hand-rolled HTTP client.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::command;

/// A running `ringtrail serve`, stopped (SIGTERM) when dropped.
pub struct Serve {
    child: Child,
    /// The OTLP/HTTP base URL (`http://127.0.0.1:PORT`).
    pub http: String,
    /// The OTLP/gRPC address (`127.0.0.1:PORT`).
    pub grpc: String,
    /// The database it writes to.
    pub url: String,
}

impl Serve {
    /// Starts `ringtrail serve` into `url` on free ports, with `extra`
    /// flags, and waits until it listens.
    pub fn start(url: &str, extra: &[&str]) -> Serve {
        let mut child = command(&["serve"])
            .args([
                "--database-url",
                url,
                "--http",
                "127.0.0.1:0",
                "--grpc",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("ringtrail serve starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let (mut http, mut grpc) = (None, None);
        // `--read-only` serves the console alone: no gRPC line.
        let read_only = extra.contains(&"--read-only");
        let mut seen = String::new();
        while http.is_none() || (grpc.is_none() && !read_only) {
            let Some(Ok(line)) = lines.next() else {
                panic!("serve exited ({:?}):\n{seen}", child.wait());
            };
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.strip_prefix("ringtrail: OTLP/HTTP listening on ") {
                http = Some(rest.to_owned());
            } else if let Some(rest) = line.strip_prefix("ringtrail: console (read-only) on ") {
                http = Some(rest.trim_end_matches('/').to_owned());
            } else if let Some(rest) = line.strip_prefix("ringtrail: OTLP/gRPC listening on ") {
                grpc = Some(rest.to_owned());
            }
        }
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Serve {
            child,
            http: http.unwrap(),
            grpc: grpc.unwrap_or_default(),
            url: url.to_owned(),
        }
    }

    /// SIGTERM, and the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A curl answer: status, headers (lowercased names) and body.
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The response headers, lowercased.
    pub headers: String,
    /// The response body.
    pub body: Vec<u8>,
}

/// `curl` with `args`, the body from stdin.
pub fn curl(args: &[&str], body: &[u8]) -> Answer {
    let dir = std::env::temp_dir();
    let headers = dir.join(format!(
        "rt-serve-h-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut child = Command::new("curl")
        .args(["-s", "-o", "-", "-D"])
        .arg(&headers)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl runs");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = out.stdout;
    let split = text.iter().rposition(|b| *b == b'\n').unwrap();
    let status = std::str::from_utf8(&text[split + 1..])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let headers_text = std::fs::read_to_string(&headers)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let _ = std::fs::remove_file(&headers);
    Answer {
        status,
        headers: headers_text,
        body: text[..split].to_vec(),
    }
}
