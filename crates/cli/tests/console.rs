//! The web console of `ringtrail serve`: the real binary, a real
//! PostgreSQL, rows sent as OTLP (curl), and a real headless Chromium
//! (chromedriver) reading the pages. Known data: two complete and
//! incomplete audit traces and a hostile one, whose message, field,
//! tool name and target try `<script>`, `onerror=` and `javascript:`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringtrail_testkit as common;
use ringtrail_testkit::browser::{Browser, Locator};
use ringtrail_testkit::serve::{curl, Serve};
use serde_json::{json, Value};

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; // complete
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"; // a tool with no permission
const C: &str = "cccccccccccccccccccccccccccccccc"; // hostile, no identity, no permission

const SCRIPT_MESSAGE: &str = "<script>window.__pwned=1</script>";
const IMG_FIELD: &str = "<img src=x onerror=\"window.__pwned=2\">";
const JS_TOOL: &str = "javascript:window.__pwned=3";
const SVG_TARGET: &str = "<svg onload=window.__pwned=4>";

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn attr(key: &str, value: Value) -> Value {
    let value = match value {
        Value::String(s) => json!({ "stringValue": s }),
        Value::Number(n) if n.is_i64() => json!({ "intValue": n.to_string() }),
        other => json!({ "stringValue": other.to_string() }),
    };
    json!({ "key": key, "value": value })
}

/// One OTLP/JSON log record.
fn record(t: u64, trace: &str, body: &str, attrs: Vec<Value>) -> Value {
    json!({
        "timeUnixNano": t.to_string(),
        "severityNumber": 9,
        "body": { "stringValue": body },
        "traceId": trace,
        "attributes": attrs,
    })
}

/// Sends `records` under scope `scope` as one OTLP/JSON logs request.
fn send(serve: &Serve, scope: &str, records: Vec<Value>) {
    let body = json!({
        "resourceLogs": [{
            "resource": { "attributes": [attr("service.name", json!("agent-svc"))] },
            "scopeLogs": [{ "scope": { "name": scope }, "logRecords": records }],
        }],
    });
    let url = format!("{}/v1/logs", serve.http);
    let answer = curl(
        &[
            "-H",
            "content-type: application/json",
            "--data-binary",
            "@-",
            &url,
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// The known data: traces A (complete), B (a tool no permission covered)
/// and C (hostile: no identity, no permission), each point in order.
fn seed(serve: &Serve) {
    let t = now_nanos() - 60_000_000_000;
    let p = |k: &str, v: &str| attr(k, json!(v));
    let n = |k: &str, v: i64| attr(k, json!(v));
    let point = |name: &str| p("audit.point", name);
    send(
        serve,
        "my-agent",
        vec![
            record(t, A, "login", vec![point("identity"), p("user_id", "u-1")]),
            record(
                t + 1_000,
                A,
                "agent",
                vec![
                    point("agent"),
                    p("agent.name", "support-bot"),
                    p("gen_ai.request.model", "gpt-test"),
                ],
            ),
            record(
                t + 2_000,
                A,
                "allowed",
                vec![
                    point("permission"),
                    p("decision", "allow"),
                    p("gen_ai.tool.name", "orders.lookup"),
                ],
            ),
            record(
                t + 3_000,
                A,
                "tool",
                vec![
                    point("tool"),
                    p("gen_ai.tool.name", "orders.lookup"),
                    n("gen_ai.usage.input_tokens", 1_200),
                    n("gen_ai.usage.output_tokens", 300),
                ],
            ),
            record(
                t + 4_000,
                A,
                "done",
                vec![
                    point("result"),
                    p("outcome", "success"),
                    n("cost.micro_usd", 4_321),
                ],
            ),
            record(
                t + 10_000,
                B,
                "login",
                vec![point("identity"), p("user_id", "u-2")],
            ),
            record(
                t + 11_000,
                B,
                "agent",
                vec![point("agent"), p("agent.name", "support-bot")],
            ),
            record(
                t + 12_000,
                B,
                "tool",
                vec![
                    point("tool"),
                    p("gen_ai.tool.name", "refund.issue"),
                    n("gen_ai.usage.input_tokens", 50),
                ],
            ),
            record(
                t + 13_000,
                B,
                "done",
                vec![point("result"), p("outcome", "success")],
            ),
            record(
                t + 20_000,
                C,
                "agent",
                vec![point("agent"), p("agent.name", "evil-bot")],
            ),
            record(
                t + 21_000,
                C,
                SCRIPT_MESSAGE,
                vec![
                    point("tool"),
                    p("gen_ai.tool.name", JS_TOOL),
                    p("note", IMG_FIELD),
                ],
            ),
            record(
                t + 22_000,
                C,
                "done",
                vec![point("result"), p("outcome", "success")],
            ),
        ],
    );
    // A plain row with a hostile target and field, in trace C.
    send(
        serve,
        SVG_TARGET,
        vec![record(
            t + 23_000,
            C,
            SCRIPT_MESSAGE,
            vec![p("html", IMG_FIELD), p("link", JS_TOOL)],
        )],
    );
}

/// Waits until the rows are committed (the gaps API sees both traces).
fn wait_committed(serve: &Serve) {
    let url = format!("{}/api/gaps?since=1h", serve.http);
    for _ in 0..100 {
        let answer = curl(&[&url], b"");
        if answer.status == 200 {
            let v: Value = serde_json::from_slice(&answer.body).unwrap();
            if v["gaps"].as_array().map_or(0, Vec::len) == 2 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the seeded rows were not committed");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The page's text as the user reads it.
async fn text(b: &Browser) -> String {
    b.eval("return document.body.innerText;")
        .await
        .as_str()
        .unwrap_or("")
        .to_owned()
}

async fn not_pwned(b: &Browser, page: &str) {
    assert_eq!(
        b.eval("return typeof window.__pwned;").await,
        json!("undefined"),
        "a script ran on {page}"
    );
    // No element carries an event handler or a javascript: link.
    let handlers = b
        .eval(
            "return Array.from(document.querySelectorAll('*')).filter(e => \
             Array.from(e.attributes).some(a => a.name.startsWith('on') || \
             /^\\s*javascript:/i.test(a.value))).length;",
        )
        .await;
    assert_eq!(handlers, json!(0), "an element with a handler on {page}");
}

#[test]
fn the_pages_show_the_known_data_and_hostile_text_only_as_text() {
    let url = common::database();
    let serve = Serve::start(&url, &[]);
    seed(&serve);
    wait_committed(&serve);
    let origin = serve.http.clone();
    let rt = runtime();
    rt.block_on(async {
        let b = Browser::start().await;

        // /gaps: exactly the incomplete traces, their codes as text.
        b.client.goto(&format!("{origin}/gaps?since=1h")).await.unwrap();
        let mut shown: Vec<String> = b
            .eval("return Array.from(document.querySelectorAll('tr[data-trace]')).map(r => r.dataset.trace);")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        shown.sort();
        assert_eq!(shown, [B, C]);
        let page = text(&b).await;
        assert!(page.contains("missing_permission"), "{page}");
        assert!(page.contains("missing_identity"), "{page}");
        not_pwned(&b, "/gaps").await;

        // Filtered by code.
        b.client
            .goto(&format!("{origin}/gaps?since=1h&code=missing_identity"))
            .await
            .unwrap();
        let only = b
            .eval("return Array.from(document.querySelectorAll('tr[data-trace]')).map(r => r.dataset.trace);")
            .await;
        assert_eq!(only, json!([C]));

        // A gap links to its timeline, which shows the finding's code and
        // links it to its row.
        b.client.goto(&format!("{origin}/gaps?since=1h")).await.unwrap();
        let link = b
            .client
            .find(Locator::Css(&format!("a[href='/traces/{B}']")))
            .await
            .expect("a link to trace B");
        link.click().await.unwrap();
        assert!(b.wait_for("return location.pathname.startsWith('/traces/');", Duration::from_secs(10)).await);
        let page = text(&b).await;
        assert!(page.contains("missing_permission"), "{page}");
        assert!(page.contains("refund.issue"), "{page}");
        let anchor = b
            .eval("const a = document.querySelector('table.findings a[href^=\"#row-\"]'); \
                   return a && document.getElementById(a.getAttribute('href').slice(1)) !== null;")
            .await;
        assert_eq!(anchor, json!(true), "the finding links to its row");
        for point in ["identity", "agent", "tool", "result"] {
            assert!(page.contains(point), "the {point} point is marked");
        }

        // The hostile trace: every value shows literally, nothing runs.
        b.client.goto(&format!("{origin}/traces/{C}")).await.unwrap();
        let page = text(&b).await;
        for hostile in [SCRIPT_MESSAGE, JS_TOOL, SVG_TARGET] {
            assert!(page.contains(hostile), "{hostile} shown as text on the trace page");
        }
        let fields = b
            .eval("return Array.from(document.querySelectorAll('details pre')).map(p => p.textContent).join('\\n');")
            .await;
        assert!(fields.as_str().unwrap().contains("onerror=\\\"window.__pwned=2\\\""), "{fields}");
        not_pwned(&b, "/traces/C").await;

        // The logs page, searched for the hostile message.
        b.client
            .goto(&format!("{origin}/logs?grep=__pwned&since=1h"))
            .await
            .unwrap();
        let page = text(&b).await;
        assert!(page.contains(SCRIPT_MESSAGE), "{page}");
        assert!(page.contains(SVG_TARGET), "{page}");
        not_pwned(&b, "/logs").await;
        // The hostile trace id link is a path, not a javascript: URL; the
        // field of key=value survives the round trip through the URL.
        b.client
            .goto(&format!("{origin}/logs?field=link%3D{}", "javascript%3Awindow.__pwned%3D3"))
            .await
            .unwrap();
        assert_eq!(
            b.eval("return document.querySelectorAll('table.rows tbody tr').length;").await,
            json!(1)
        );
        not_pwned(&b, "/logs?field").await;

        // The overview.
        b.client.goto(&format!("{origin}/?since=1h")).await.unwrap();
        let page = text(&b).await;
        assert!(page.contains("audit traces incomplete"), "{page}");
        not_pwned(&b, "/").await;

        // Usage: the sums are exact, and the same as `ringtrail usage`.
        b.client.goto(&format!("{origin}/usage?since=1h&by=agent")).await.unwrap();
        let table = b
            .eval("return Array.from(document.querySelectorAll('table.usage tbody tr')).map(r => \
                   Array.from(r.cells).map(c => c.textContent));")
            .await;
        assert_eq!(
            table,
            json!([
                ["support-bot", "2", "1,250", "300", "0", "$0.004321", "4,321"],
                ["evil-bot", "1", "0", "0", "0", "$0.000000", "0"],
            ])
        );
        not_pwned(&b, "/usage").await;

        // Nothing on any page left the origin.
        assert_eq!(b.foreign_requests(&origin).await, Vec::<String>::new());

        // Live mode: a row sent after the page opened shows up, once.
        b.client.goto(&format!("{origin}/logs?live=1")).await.unwrap();
        assert!(
            b.wait_for("return document.body.dataset.live === '1';", Duration::from_secs(10)).await,
            "live mode on"
        );
        // Let the stream's first event (its cursor) arrive.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let marker = format!("live-{}", now_nanos());
        send(&serve, "late", vec![record(now_nanos(), A, &marker, vec![])]);
        let count = format!(
            "return Array.from(document.querySelectorAll('table.rows tbody tr')).filter(r => r.textContent.includes('{marker}')).length === 1;"
        );
        assert!(b.wait_for(&count, Duration::from_secs(20)).await, "the live row shows up");
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(b.wait_for(&count, Duration::from_secs(1)).await, "and only once");
        assert_eq!(b.foreign_requests(&origin).await, Vec::<String>::new());

        // The docs' screenshots: RINGTRAIL_SCREENSHOTS=docs/img cargo test
        // -p ringtrail-cli --test console the_pages
        if let Ok(dir) = std::env::var("RINGTRAIL_SCREENSHOTS") {
            for (name, path) in [
                ("overview", "/?since=1h".to_owned()),
                ("gaps", "/gaps?since=1h".to_owned()),
                ("trace", format!("/traces/{B}")),
                ("logs", "/logs?since=1h".to_owned()),
                ("usage", "/usage?since=1h&by=agent".to_owned()),
            ] {
                b.client.goto(&format!("{origin}{path}")).await.unwrap();
                let png = b.client.screenshot().await.unwrap();
                std::fs::write(format!("{dir}/console-{name}.png"), png).unwrap();
            }
        }
        b.close().await;
    });
    // The API and the command line give the same groups.
    let api: Value = serde_json::from_slice(
        &curl(&[&format!("{origin}/api/usage?since=1h&by=model")], b"").body,
    )
    .unwrap();
    assert_eq!(
        api,
        json!({"by": "model", "groups": [
            {"group": "gpt-test", "calls": 1, "input_tokens": 1200, "output_tokens": 300, "cached_tokens": 0, "cost_micro_usd": 4321},
            {"group": "(none)", "calls": 2, "input_tokens": 50, "output_tokens": 0, "cached_tokens": 0, "cost_micro_usd": 0},
        ]})
    );
    let cli = ringtrail_testkit::cli::run_with_url(
        &["usage", "--since", "1h", "--by", "model", "--json"],
        &url,
    );
    let lines: Vec<Value> = ringtrail_testkit::cli::assert_success(&cli)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(Value::from(lines), api["groups"]);
    // Every answer carries the policy, and a foreign Host is refused.
    let answer = curl(&[&format!("{origin}/logs")], b"");
    assert!(
        answer
            .headers
            .contains("content-security-policy: default-src 'self'; script-src 'self'"),
        "{}",
        answer.headers
    );
    let answer = curl(
        &[
            "-H",
            "Host: rebind.evil.example",
            &format!("{origin}/api/stats"),
        ],
        b"",
    );
    assert_eq!(answer.status, 403);
    assert_eq!(serve.stop(), Some(0));
}

#[test]
fn with_a_token_the_console_needs_it_too() {
    let url = common::database();
    let serve = Serve::start(&url, &["--token", "s3cret-token"]);
    let origin = serve.http.clone();
    // The API: 401 JSON, never a redirect.
    let answer = curl(&[&format!("{origin}/api/stats")], b"");
    assert_eq!(answer.status, 401);
    assert!(answer.headers.contains("application/json"));
    let v: Value = serde_json::from_slice(&answer.body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("token"));
    let answer = curl(
        &[
            "-H",
            "Authorization: Bearer s3cret-token",
            &format!("{origin}/api/stats"),
        ],
        b"",
    );
    assert_eq!(answer.status, 200);
    // A page: 401 with the login form.
    let answer = curl(&[&format!("{origin}/gaps")], b"");
    assert_eq!(answer.status, 401);
    assert!(String::from_utf8_lossy(&answer.body).contains("name=\"token\""));
    // A cross-site POST is refused, whatever it carries.
    let answer = curl(
        &[
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer s3cret-token",
            "-H",
            "Origin: https://evil.example",
            &format!("{origin}/api/verify"),
        ],
        b"",
    );
    assert_eq!(answer.status, 403);
    let answer = curl(
        &[
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer s3cret-token",
            "-H",
            "Sec-Fetch-Site: same-origin",
            &format!("{origin}/api/verify"),
        ],
        b"",
    );
    assert_eq!(answer.status, 202);

    let rt = runtime();
    rt.block_on(async {
        let b = Browser::start().await;
        b.client.goto(&format!("{origin}/gaps?since=1h")).await.unwrap();
        let page = text(&b).await;
        assert!(page.contains("Sign in"), "{page}");
        // A wrong token, then the right one.
        let form = b.client.form(Locator::Css("form.login")).await.unwrap();
        form.set_by_name("token", "wrong").await.unwrap();
        form.submit().await.unwrap();
        assert!(b.wait_for("return document.body.innerText.includes('not the token');", Duration::from_secs(10)).await);
        let form = b.client.form(Locator::Css("form.login")).await.unwrap();
        form.set_by_name("token", "s3cret-token").await.unwrap();
        form.submit().await.unwrap();
        assert!(
            b.wait_for("return location.pathname === '/gaps' && document.body.innerText.includes('Incomplete traces');", Duration::from_secs(10)).await,
            "signed in, back on the page asked for"
        );
        // The cookie is HttpOnly: no script reads it.
        assert_eq!(b.eval("return document.cookie;").await, json!(""));
        // And the API answers the browser, with the cookie.
        b.client.goto(&format!("{origin}/api/stats")).await.unwrap();
        assert!(text(&b).await.contains("\"rows\""));
        b.close().await;
    });
    assert_eq!(serve.stop(), Some(0));
}

#[test]
fn read_only_serves_the_console_alone_to_a_select_only_role() {
    let url = common::database();
    // Rows first, through a normal serve.
    let writer = Serve::start(&url, &[]);
    seed(&writer);
    wait_committed(&writer);
    assert_eq!(writer.stop(), Some(0));
    let db = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let role = format!("console_{db}");
    common::client(&url)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN IN ROLE ringtrail_reader"
        ))
        .unwrap();
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    let reader_url = format!("{scheme}://{role}@{host}");

    let serve = Serve::start(&reader_url, &["--read-only"]);
    let origin = serve.http.clone();
    assert!(serve.grpc.is_empty(), "no gRPC listener");
    // No OTLP endpoint.
    let answer = curl(
        &[
            "-H",
            "content-type: application/json",
            "--data-binary",
            "@-",
            &format!("{origin}/v1/logs"),
        ],
        b"{}",
    );
    assert_eq!(answer.status, 404);
    // The pages and the API read as the SELECT-only role.
    let answer = curl(&[&format!("{origin}/api/gaps?since=1h")], b"");
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let v: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(v["gaps"].as_array().unwrap().len(), 2);
    for page in [
        "/",
        "/logs?since=1h",
        "/gaps?since=1h",
        &format!("/traces/{A}"),
    ] {
        let answer = curl(&[&format!("{origin}{page}")], b"");
        assert_eq!(
            answer.status,
            200,
            "{page}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    // verify runs as the reader and comes back clean.
    let answer = curl(
        &[
            "-X",
            "POST",
            "-H",
            "Sec-Fetch-Site: same-origin",
            &format!("{origin}/api/verify"),
        ],
        b"",
    );
    assert_eq!(answer.status, 202);
    let mut state = Value::Null;
    for _ in 0..100 {
        state =
            serde_json::from_slice(&curl(&[&format!("{origin}/api/verify")], b"").body).unwrap();
        if state["state"] != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(state["state"], "clean", "{state}");
    assert_eq!(serve.stop(), Some(0));
}
