//! report.html in a real browser: Debian's headless Chromium loads the rendered page from a
//! `file://` URL and atp checks, over the DevTools protocol (`--remote-debugging-pipe`, through
//! two FIFOs), that the page raised no console error, no exception and no CSP or load error, that
//! its script ran, and that the grid and the three charts are in the DOM.
//!
//! Without Chromium the test prints `!!! SKIPPED`; with `ATP_REQUIRE_BROWSER=1` (CI, after
//! `.ci/run` installed `chromium`) it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ATP_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

fn skip(why: &str) {
    if std::env::var("ATP_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("ATP_REQUIRE_BROWSER=1 but: {why}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED report_html_loads_in_headless_chromium: {why}\n!!! (apt-get install chromium; ATP_REQUIRE_BROWSER=1 makes this a failure)\n"
    );
}

/// A DevTools session over the pipe transport.
struct Cdp {
    to: std::fs::File,
    from: mpsc::Receiver<Value>,
    next: u64,
    events: Vec<Value>,
}

impl Cdp {
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        self.to.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
            self.events.push(m);
        }
    }

    fn wait_event(&mut self, method: &str) {
        if self.events.iter().any(|e| e["method"] == method) {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {method} event"));
            let hit = m["method"] == method;
            self.events.push(m);
            if hit {
                return;
            }
        }
    }
}

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo")
        .success());
}

/// Load `html` in headless Chromium; returns (errors seen, the DOM facts).
fn load(browser: &Path, html: &Path) -> (Vec<String>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let (cmd_in, cmd_out) = (dir.path().join("in"), dir.path().join("out"));
    mkfifo(&cmd_in);
    mkfifo(&cmd_out);
    let profile = dir.path().join("profile");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(r#"exec "$0" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage --user-data-dir="$1" --remote-debugging-pipe about:blank 3<"$2" 4>"$3""#)
        .arg(browser)
        .arg(&profile)
        .arg(&cmd_in)
        .arg(&cmd_out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    // bash opens fd 3 (our write end) first, then fd 4 (our read end).
    let to = std::fs::OpenOptions::new()
        .write(true)
        .open(&cmd_in)
        .unwrap();
    let from = std::fs::File::open(&cmd_out).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(from);
        loop {
            let mut buf = Vec::new();
            match r.read_until(0, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    buf.pop();
                    if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                }
            }
        }
    });
    let mut cdp = Cdp {
        to,
        from: rx,
        next: 0,
        events: Vec::new(),
    };
    let target = cdp.send(None, "Target.createTarget", json!({"url": "about:blank"}));
    let attached = cdp.send(
        None,
        "Target.attachToTarget",
        json!({"targetId": target["targetId"], "flatten": true}),
    );
    let session = attached["sessionId"].as_str().unwrap().to_string();
    let s = Some(session.as_str());
    for m in ["Runtime.enable", "Log.enable", "Page.enable"] {
        cdp.send(s, m, json!({}));
    }
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    cdp.send(s, "Page.navigate", json!({"url": url}));
    cdp.wait_event("Page.loadEventFired");
    let facts = cdp.send(
        s,
        "Runtime.evaluate",
        json!({
            "returnByValue": true,
            "expression": "JSON.stringify({ready: document.documentElement.getAttribute('data-ready'), gridRows: document.querySelectorAll('#grid table tbody tr').length, gridLinks: document.querySelectorAll('#grid td a').length, charts: ['chart-solved','chart-cost','chart-time'].filter(function (id) { var f = document.getElementById(id); return f && f.querySelector('svg') && f.querySelector('svg').getBoundingClientRect().width > 0; }).length, bars: document.querySelectorAll('#chart-solved rect.bar').length, points: document.querySelectorAll('#chart-cost circle.point').length, cells: document.querySelectorAll('details.cell').length, title: document.title})"
        }),
    );
    // Let late console messages arrive, then close.
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(m) = cdp.from.try_recv() {
        cdp.events.push(m);
    }
    let _ = cdp.send(None, "Browser.close", json!({}));
    let _ = child.wait();
    let mut errors = Vec::new();
    for e in &cdp.events {
        match e["method"].as_str() {
            Some("Runtime.exceptionThrown") => errors.push(e["params"].to_string()),
            Some("Runtime.consoleAPICalled")
                if matches!(e["params"]["type"].as_str(), Some("error") | Some("assert")) =>
            {
                errors.push(e["params"].to_string())
            }
            Some("Log.entryAdded") if e["params"]["entry"]["level"] == "error" => {
                errors.push(e["params"].to_string())
            }
            _ => {}
        }
    }
    let v: Value = serde_json::from_str(facts["result"]["value"].as_str().expect("facts")).unwrap();
    (errors, v)
}

#[test]
fn report_html_loads_in_headless_chromium() {
    let Some(browser) = chromium() else {
        skip("no chromium on PATH");
        return;
    };
    let (d, s) = crate::reports::store();
    atp_bench::report::render(&s).unwrap();
    let (errors, facts) = load(&browser, &d.path().join("report.html"));
    assert!(errors.is_empty(), "console errors: {errors:?}");
    assert_eq!(
        facts["ready"], "1",
        "the page's script ran to its end: {facts}"
    );
    assert_eq!(facts["gridRows"], 2, "{facts}");
    assert_eq!(facts["gridLinks"], 4, "{facts}");
    assert_eq!(facts["charts"], 3, "{facts}");
    assert_eq!(facts["bars"], 2, "{facts}");
    assert_eq!(facts["points"], 2, "{facts}");
    assert_eq!(facts["cells"], 8, "{facts}");
    assert_eq!(facts["title"], "atp benchmark: putnam");
}

#[test]
fn a_page_with_an_error_is_caught() {
    // The check itself can fail: a page whose script throws and that tries to load a remote
    // image is reported.
    let Some(browser) = chromium() else {
        skip("no chromium on PATH");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.html");
    std::fs::write(
        &p,
        "<!doctype html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body><img src=\"http://127.0.0.1:9/x.png\"><script>undefinedFunction();</script></body></html>",
    )
    .unwrap();
    let (errors, _) = load(&browser, &p);
    assert!(
        errors.iter().any(|e| e.contains("undefinedFunction")),
        "{errors:?}"
    );
}
