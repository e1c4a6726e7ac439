//! A real headless Chromium for the console's tests, driven through
//! `chromedriver` (WebDriver) with [`fantoccini`]: Debian's `chromium`
//! and `chromium-driver` packages, which `.ci/run` installs. No stand-in:
//! when either binary is missing, [`Browser::start`] panics with how to
//! install it, so the tests never skip silently.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini::{Client, Locator};

/// A running `chromedriver` and one headless Chromium session on it.
pub struct Browser {
    driver: Child,
    /// The WebDriver session.
    pub client: Client,
}

fn find(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|c| std::path::Path::new(c).exists())
        .map(|c| (*c).to_owned())
}

impl Browser {
    /// Starts `chromedriver` on a free port and opens a headless
    /// Chromium session (a fresh profile: no cookies).
    pub async fn start() -> Browser {
        let driver_bin = std::env::var("CHROMEDRIVER")
            .ok()
            .or_else(|| find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]));
        let chrome_bin = std::env::var("CHROME_BIN")
            .ok()
            .or_else(|| find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]));
        let (Some(driver_bin), Some(chrome_bin)) = (driver_bin, chrome_bin) else {
            panic!(
                "the console tests need Chromium and chromedriver: \
                 apt-get install chromium chromium-driver (or set CHROME_BIN and CHROMEDRIVER)"
            );
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // A process group of its own, so the browser it starts goes
        // with it, whatever way the test ends (see `Drop`).
        let driver = Command::new(&driver_bin)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chrome_bin,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    "--no-first-run", "--disable-extensions",
                ],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let attempt = fantoccini::ClientBuilder::rustls()
                .expect("a TLS-capable WebDriver client")
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
            match attempt {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session on chromedriver: {e}"),
            }
        };
        Browser { driver, client }
    }

    /// Runs `script` (a function body; `arguments` as in WebDriver) and
    /// returns its value.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns `true`, at most `timeout`.
    pub async fn wait_for(&self, script: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.eval(script).await == serde_json::Value::Bool(true) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every resource the page loaded that did not come from `origin`
    /// (the browser's own resource timing entries, and the document).
    pub async fn foreign_requests(&self, origin: &str) -> Vec<String> {
        let names = self
            .eval(
                "return performance.getEntriesByType('resource').map(e => e.name)\
                 .concat(performance.getEntriesByType('navigation').map(e => e.name));",
            )
            .await;
        names
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .filter(|n| !n.starts_with(origin))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the session, then stops `chromedriver` and the browser.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Kills `chromedriver`'s whole process group: the driver and every
    /// browser process it started, even after a failed assertion.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
