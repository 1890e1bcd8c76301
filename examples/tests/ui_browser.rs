//! The visualizer in a real browser: the demo's server, Debian's Chromium
//! driven over chromedriver (WebDriver), and the admin API to set up and
//! check what the UI shows and does. Screenshots of each view go to
//! `target/ui-screenshots/`.
//!
//! Needs `chromium` and `chromium-driver`; without them it skips with a
//! notice, except under `CI=true`, where it fails.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const TOKEN: &str = "ui-browser-test-token-0123456789";
/// The demo's read-only token.
const READ_ONLY: &str = "ui-browser-read-only-0123456789";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The demo on a free port, with no jobs of its own; returns it and its
/// base URL.
fn start_demo(dir: &Path) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args([
            "--db",
            dir.join("demo.db").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--no-seed",
        ])
        .env("RUNEKERNEL_ADMIN_TOKEN", TOKEN)
        .env("RUNEKERNEL_READ_ONLY_TOKEN", READ_ONLY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    let stdout = child.stdout.take().unwrap();
    let process = Process(child);
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("admin API:").nth(1) {
            let base = rest.trim().to_owned();
            // Keep reading, so the demo's later lines find a reader.
            std::thread::spawn(move || lines.for_each(drop));
            return (process, base);
        }
    }
    panic!("the demo never printed its address");
}

fn start_chromedriver() -> (Process, String) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let process = Process(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    (process, format!("http://127.0.0.1:{port}"))
}

async fn browser(driver: &str) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1500,1000"
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(driver)
        .await
        .expect("a browser session")
}

/// The admin API, as the test's own client.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn submit(&self, state: Value, options: Value) -> String {
        let job = self
            .call(
                reqwest::Method::POST,
                "/jobs",
                Some(json!({ "machine": "order", "state": state, "options": options })),
            )
            .await;
        job["id"].as_str().unwrap().to_owned()
    }

    /// Polls `GET path` until `done` holds for it, up to `within`.
    async fn until(&self, path: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.get(path).await;
            if done(&value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {value}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    // Let transitions and the layout settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits up to `within` for an element matching `css`; when none comes,
/// saves what the page shows (`failure.png`, `failure.html`) and fails.
async fn wait_for(client: &Client, css: &str, within: Duration) -> fantoccini::elements::Element {
    match client.wait().at_most(within).for_element(Locator::Css(css)).await {
        Ok(element) => element,
        Err(error) => {
            screenshot(client, "failure").await;
            let html = client.source().await.unwrap_or_default();
            let path = screenshots().join("failure.html");
            std::fs::write(&path, html).unwrap();
            panic!(
                "no `{css}` within {within:?} ({error}); the page is in {}",
                path.display()
            );
        }
    }
}

/// Clicks the element matching `css`, finding it again if a live refresh
/// replaced it in between.
async fn click(client: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let element = wait_for(client, css, Duration::from_secs(10)).await;
        match element.click().await {
            Ok(()) => return,
            Err(error) if Instant::now() < deadline => {
                eprintln!("clicking `{css}` again: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("could not click `{css}`: {error}"),
        }
    }
}

fn browser_present() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the browser test needs {CHROMIUM} and {CHROMEDRIVER} (Debian's chromium and chromium-driver); .ci/run installs them"
    );
    eprintln!("skipping the browser test: install Debian's chromium and chromium-driver to run it");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visualizer_shows_and_steers_the_demo() {
    if !browser_present() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (_demo, base) = start_demo(dir.path());
    let (_driver, driver_url) = start_chromedriver();
    let api = Api {
        base: base.clone(),
        http: reqwest::Client::new(),
    };
    let client = browser(&driver_url).await;

    // Machines view, then one [data-state] per state of each machine.
    client.goto(&format!("{base}/ui#token={TOKEN}")).await.unwrap();
    wait_for(&client, "tr[data-machine=order]", Duration::from_secs(10)).await;
    screenshot(&client, "machines").await;
    for machine in ["order", "invoice"] {
        let def = api.get(&format!("/machines/{machine}")).await;
        client.goto(&format!("{base}/ui#/machines/{machine}")).await.unwrap();
        wait_for(
            &client,
            &format!("svg.graph[data-machine={machine}]"),
            Duration::from_secs(10),
        )
        .await;
        let drawn = client.find_all(Locator::Css("svg.graph [data-state]")).await.unwrap();
        assert_eq!(
            drawn.len(),
            def["states"].as_array().unwrap().len(),
            "{machine}: one box per state"
        );
        let edges = client.find_all(Locator::Css("svg.graph .edge")).await.unwrap();
        assert_eq!(
            edges.len(),
            def["transitions"].as_array().unwrap().len(),
            "{machine}: one edge per transition"
        );
        screenshot(&client, &format!("graph-{machine}")).await;
    }

    // A job submitted through the API shows in its state's count within 3 s.
    client.goto(&format!("{base}/ui#/machines/order")).await.unwrap();
    let counts = wait_for(&client, "text[data-counts=Created]", Duration::from_secs(10)).await;
    assert_eq!(counts.text().await.unwrap().trim(), "–", "no job yet");
    let delayed = api
        .submit(
            json!({"Created": {"sku": "rune-1", "qty": 1}}),
            json!({"delay_ms": 600_000}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let text = counts.text().await.unwrap();
        if text.contains("● 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the count did not change within 3 s: `{text}`"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    screenshot(&client, "graph-live-count").await;

    // A job that ran: clicking it in the list highlights its path.
    let ran = api
        .submit(json!({"Created": {"sku": "tome", "qty": 2}}), json!({}))
        .await;
    api.until(&format!("/jobs/{ran}"), Duration::from_secs(30), |job| {
        matches!(job["status"].as_str(), Some("completed" | "failed"))
    })
    .await;
    client.goto(&format!("{base}/ui#/jobs?machine=order")).await.unwrap();
    let link = format!("tr[data-job=\"{ran}\"] a");
    wait_for(&client, &link, Duration::from_secs(10)).await;
    screenshot(&client, "jobs").await;
    click(&client, &link).await;
    wait_for(&client, "svg.graph .state.current", Duration::from_secs(10)).await;
    let taken = client.find_all(Locator::Css("svg.graph .edge.taken")).await.unwrap();
    let history = api.get(&format!("/jobs/{ran}/history")).await;
    let edges_taken = history["path"]["edges"].as_array().unwrap().len();
    assert!(edges_taken >= 1, "the job moved: {history}");
    assert_eq!(taken.len(), edges_taken, "every edge it took is highlighted");
    let visited = client.find_all(Locator::Css("svg.graph .state.visited")).await.unwrap();
    assert_eq!(visited.len(), history["path"]["visited"].as_array().unwrap().len());
    // A timeline entry picks its edge on the graph.
    let rows = client
        .find_all(Locator::Css("table.timeline tr[data-action=timeline]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), history["history"].as_array().unwrap().len());
    click(&client, "table.timeline tr[data-action=timeline]:last-child").await;
    wait_for(&client, "svg.graph .edge.picked", Duration::from_secs(5)).await;
    screenshot(&client, "job-timeline").await;

    // Cancelling the delayed job through the UI cancels it.
    client.goto(&format!("{base}/ui#/jobs/{delayed}")).await.unwrap();
    wait_for(&client, "[data-job-status=pending]", Duration::from_secs(10)).await;
    let targets = client.find_all(Locator::Css("#move-target option")).await.unwrap();
    let mut offered = Vec::new();
    for option in &targets {
        offered.push(option.attr("value").await.unwrap().unwrap_or_default());
    }
    assert_eq!(
        offered,
        ["Paid", "Cancelled"],
        "only the transitions declared from Created"
    );
    click(&client, "button[data-action=cancel]").await;
    click(&client, "#modal:not([hidden]) #confirm-yes").await;
    api.until(&format!("/jobs/{delayed}"), Duration::from_secs(5), |job| {
        job["status"] == "cancelled"
    })
    .await;
    wait_for(&client, "[data-job-status=cancelled]", Duration::from_secs(5)).await;
    screenshot(&client, "job-cancelled").await;

    // Retrying it through the UI runs it again, recorded as the admin's.
    click(&client, "button[data-action=retry]").await;
    click(&client, "#modal:not([hidden]) #confirm-yes").await;
    api.until(&format!("/jobs/{delayed}/history"), Duration::from_secs(5), |history| {
        history["history"]
            .as_array()
            .is_some_and(|entries| entries.iter().any(|e| e["error"] == "retry requested by admin"))
    })
    .await;

    // With the read-only token, a job's view offers no action.
    client.goto(&format!("{base}/ui#token={READ_ONLY}")).await.unwrap();
    client.refresh().await.unwrap();
    client.goto(&format!("{base}/ui#/jobs/{delayed}")).await.unwrap();
    wait_for(&client, "[data-read-only]", Duration::from_secs(10)).await;
    let buttons = client.find_all(Locator::Css(".actions button")).await.unwrap();
    assert!(buttons.is_empty(), "a read-only token is offered no action");
    screenshot(&client, "job-read-only").await;

    // A wrong token shows a clear message, not a blank page.
    client
        .goto(&format!("{base}/ui#token=not-the-right-token-at-all"))
        .await
        .unwrap();
    client.refresh().await.unwrap();
    let banner = wait_for(&client, "#banner:not([hidden])", Duration::from_secs(10)).await;
    assert!(banner.text().await.unwrap().contains("refused this token (401)"));
    assert!(client.find(Locator::Css("#token-panel:not([hidden])")).await.is_ok());
    screenshot(&client, "wrong-token").await;

    client.close().await.unwrap();
    eprintln!(
        "browser test: {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        screenshots().display()
    );
}
