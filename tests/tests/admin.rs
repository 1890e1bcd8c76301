//! The admin API over real HTTP against a bound server: every endpoint and
//! every error code, and a property test that random requests never get a
//! 5xx or hang.

use std::time::Duration;

use proptest::prelude::*;
use reqwest::{Client, Method, StatusCode};
use runekernel::admin::{self, AdminConfig};
use runekernel::prelude::*;
use runekernel_tests::machines::{Calls, Order, Scripted, Shop, Task};
use serde_json::{json, Value};

const TOKEN: &str = "test-token-0123456789";
/// The server's read-only token.
const READ_ONLY: &str = "read-only-token-0123456789";
/// The server's token for the jobs of `order`, named `orders`.
const ORDERS: &str = "orders-token-0123456789";
/// The server's token for the jobs of `invoice` (not registered), named
/// `billing`.
const BILLING: &str = "billing-token-0123456789";

struct Server {
    base: String,
    client: Client,
    runtime: Runtime,
}

impl Server {
    async fn start() -> Self {
        let runtime = Runtime::builder().register(Order::handler(Shop)).build().await.unwrap();
        let config = AdminConfig::new(TOKEN)
            .unwrap()
            .read_only_token(READ_ONLY)
            .unwrap()
            .machine_token("orders", ORDERS, ["order"])
            .unwrap()
            .machine_token("billing", BILLING, ["invoice"])
            .unwrap()
            .body_limit(4096);
        Server::serve(runtime, config).await
    }

    /// The admin API of `runtime` with `config`, bound to a free port.
    async fn serve(runtime: Runtime, config: AdminConfig) -> Self {
        let app = admin::router(runtime.clone(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server {
            base,
            client: Client::new(),
            runtime,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(TOKEN, method, path, body).await
    }

    /// [`call`](Self::call) with `token`.
    async fn call_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn submit(&self, state: Value, options: Value) -> Value {
        let (status, job) = self
            .call(
                Method::POST,
                "/jobs",
                Some(json!({"machine": "order", "state": state, "options": options})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        job
    }
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn health_and_openapi_are_public() {
    let s = Server::start().await;
    let plain = Client::new();
    let health = plain.get(format!("{}/health", s.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let doc: Value = plain
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/jobs",
        "/jobs/{id}",
        "/jobs/{id}/state",
        "/jobs/{id}/run",
        "/jobs/{id}/cancel",
        "/jobs/{id}/retry",
        "/jobs/{id}/history",
        "/machines",
        "/machines/{name}",
        "/health",
        "/metrics",
        "/events",
        "/ui",
        "/ui/{file}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn everything_else_needs_the_token() {
    let s = Server::start().await;
    for path in ["/jobs", "/machines", "/metrics", "/events"] {
        let response = Client::new().get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
        let wrong = Client::new()
            .get(format!("{}{path}", s.base))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn submit_get_and_wait_for_a_job() {
    let s = Server::start().await;
    let job = s.submit(json!({"Created": {"sku": "a", "qty": 1}}), json!({})).await;
    assert_eq!(job["machine"], "order");
    assert_eq!(job["state"], json!({"Created": {"sku": "a", "qty": 1}}));
    assert!(job["status"] == "pending" || job["status"] == "running" || job["status"] == "completed");
    let id: JobId = job["id"].as_str().unwrap().parse().unwrap();
    s.runtime.wait::<Order>(id).await.unwrap();
    let (status, got) = s.call(Method::GET, &format!("/jobs/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["status"], "completed");
    assert_eq!(got["state"], json!({"Shipped": {"tracking": "TRACK-100"}}));
    let (_, history) = s.call(Method::GET, &format!("/jobs/{id}/history"), None).await;
    let tos: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(tos, ["Created", "Paid", "Shipped"]);
}

#[tokio::test]
async fn submit_errors() {
    let s = Server::start().await;
    let post = |body: Value| s.call(Method::POST, "/jobs", Some(body));
    let (st, b) = post(json!({"machine": "nope", "state": "X"})).await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "machine_not_found");
    let (st, b) = post(json!({"machine": "order", "state": {"Paid": {"amount_cents": 5}}})).await;
    assert_error(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "not_initial_state");
    let (st, b) = post(json!({"machine": "order", "state": {"Created": {"sku": 1, "qty": 1}}})).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_state");
    let (st, b) = post(json!({"machine": "order", "state": {"Teleported": {}}})).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_state");
    let (st, b) = post(json!({"machine": "order"})).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_json");
    let (st, b) =
        post(json!({"machine": "order", "state": {"Created": {"sku": "a", "qty": 1}}, "options": {"max_attempts": 0}}))
            .await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_options");
    let raw = s
        .request(Method::POST, "/jobs")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(raw.json::<Value>().await.unwrap()["code"], "invalid_json");
    let big = json!({"machine": "order", "state": {"Created": {"sku": "x".repeat(10_000), "qty": 1}}});
    let (st, b) = post(big).await;
    assert_error(st, &b, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
}

#[tokio::test]
async fn unknown_jobs_ids_paths_and_methods() {
    let s = Server::start().await;
    let (st, b) = s.call(Method::GET, &format!("/jobs/{}", JobId::new()), None).await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "job_not_found");
    let (st, b) = s.call(Method::GET, "/jobs/not-an-id", None).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_id");
    let (st, b) = s.call(Method::GET, "/nowhere", None).await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
    let (st, b) = s.call(Method::DELETE, "/jobs", None).await;
    assert_error(st, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let (st, b) = s.call(Method::GET, "/machines/nope", None).await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "machine_not_found");
    for path in ["/jobs?status=done", "/jobs?limit=0", "/jobs?colour=red"] {
        let (st, b) = s.call(Method::GET, path, None).await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_query");
    }
    let (st, b) = s.call(Method::GET, "/jobs?after=x", None).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_id");
}

#[tokio::test]
async fn state_changes_follow_declared_transitions() {
    let s = Server::start().await;
    let later = json!({"delay_ms": 3_600_000});
    let job = s.submit(json!({"Created": {"sku": "a", "qty": 1}}), later).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let path = format!("/jobs/{id}/state");
    let (st, b) = s
        .call(
            Method::PUT,
            &path,
            Some(json!({"state": {"Shipped": {"tracking": "t"}}})),
        )
        .await;
    assert_error(st, &b, StatusCode::CONFLICT, "illegal_transition");
    assert_eq!(b["allowed"], json!(["Paid", "Cancelled"]));
    let (st, b) = s.call(Method::PUT, &path, Some(json!({"state": "Nope"}))).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_state");
    let (st, moved) = s
        .call(
            Method::PUT,
            &path,
            Some(json!({"state": {"Paid": {"amount_cents": 250}}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{moved}");
    assert_eq!(moved["state"], json!({"Paid": {"amount_cents": 250}}));
    let history = s.runtime.history(id.parse().unwrap()).await.unwrap();
    assert_eq!(history.last().unwrap().worker.as_deref(), Some("admin"));
    s.runtime.verify(id.parse().unwrap()).await.unwrap();
    let (st, b) = s.call(Method::PUT, &path, Some(json!({"state": "Refunded"}))).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "completed");
    let (st, b) = s.call(Method::PUT, &path, Some(json!({"state": "Cancelled"}))).await;
    assert_error(st, &b, StatusCode::CONFLICT, "illegal_transition");
    assert_eq!(b["allowed"], json!([]));
}

#[tokio::test]
async fn a_cancelled_job_is_retried_as_admin() {
    let s = Server::start().await;
    let job = s
        .submit(
            json!({"Created": {"sku": "a", "qty": 1}}),
            json!({"delay_ms": 3_600_000}),
        )
        .await;
    let id = job["id"].as_str().unwrap();
    let (st, b) = s.call(Method::POST, &format!("/jobs/{id}/retry"), None).await;
    assert_error(st, &b, StatusCode::CONFLICT, "not_retryable");
    assert!(b["detail"].as_str().unwrap().contains("pending"), "{b}");
    let (st, _) = s.call(Method::POST, &format!("/jobs/{id}/cancel"), None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = s.call(Method::POST, &format!("/jobs/{id}/retry"), None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        (b["status"].as_str(), b["attempts"].as_u64()),
        (Some("pending"), Some(0))
    );
    // The retried job runs at once; its history keeps the retry.
    let (_, history) = s.call(Method::GET, &format!("/jobs/{id}/history"), None).await;
    let retry = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] != 0 && e["status"] == "pending" && e["worker"] == "admin")
        .cloned()
        .unwrap_or_default();
    assert_eq!(retry["error"].as_str(), Some("retry requested by admin"), "{history}");
    let (st, b) = s
        .call(Method::POST, &format!("/jobs/{}/retry", JobId::new()), None)
        .await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "job_not_found");
}

#[tokio::test]
async fn only_a_finished_job_is_deleted() {
    let s = Server::start().await;
    let job = s
        .submit(
            json!({"Created": {"sku": "a", "qty": 1}}),
            json!({"delay_ms": 3_600_000}),
        )
        .await;
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());
    let (st, b) = s.call(Method::DELETE, &path, None).await;
    assert_error(st, &b, StatusCode::CONFLICT, "not_finished");
    let (st, _) = s.call(Method::POST, &format!("{path}/cancel"), None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = s.call(Method::DELETE, &path, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let (st, b) = s.call(Method::GET, &path, None).await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "job_not_found");
    let (st, b) = s.call(Method::DELETE, &path, None).await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "job_not_found");
}

#[tokio::test]
async fn jobs_matching_a_filter_are_cancelled_and_retried_in_pages() {
    let s = Server::start().await;
    for _ in 0..3 {
        s.submit(
            json!({"Created": {"sku": "a", "qty": 1}}),
            json!({"delay_ms": 3_600_000}),
        )
        .await;
    }
    let (st, b) = s
        .call(
            Method::POST,
            "/jobs/cancel",
            Some(json!({"status": "pending", "limit": 0})),
        )
        .await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_options");
    let mut touched = 0;
    let mut body = json!({"machine": "order", "status": "pending", "limit": 2});
    loop {
        let (st, page) = s.call(Method::POST, "/jobs/cancel", Some(body.clone())).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        touched += page["touched"].as_u64().unwrap();
        match page["next"].as_str() {
            Some(next) => body["after"] = json!(next),
            None => break,
        }
    }
    assert_eq!(touched, 3);
    let (st, page) = s
        .call(
            Method::POST,
            "/jobs/retry",
            Some(json!({"machine": "order", "status": "cancelled", "limit": 1000})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert_eq!((page["touched"].as_u64(), page["next"].as_str()), (Some(3), None));
}

#[tokio::test]
async fn queues_are_listed_paused_resumed_and_filtered_on() {
    let s = Server::start().await;
    let later = json!({"delay_ms": 3_600_000});
    let job = s
        .submit(json!({"Created": {"sku": "a", "qty": 1}}), later.clone())
        .await;
    assert_eq!(job["queue"], "default", "{job}");
    let options = json!({"delay_ms": 3_600_000, "queue": "slow"});
    let slow = s.submit(json!({"Created": {"sku": "b", "qty": 1}}), options).await;
    assert_eq!(slow["queue"], "slow", "{slow}");

    let (st, list) = s.call(Method::GET, "/queues", None).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let queues: Vec<_> = list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["name"].clone(),
                q["pending"].clone(),
                q["paused"].clone(),
                q["served_here"].clone(),
            )
        })
        .collect();
    assert_eq!(
        queues,
        [
            (json!("default"), json!(1), json!(false), json!(true)),
            (json!("slow"), json!(1), json!(false), json!(false))
        ]
    );

    let (st, paused) = s.call(Method::PUT, "/queues/slow/pause", None).await;
    assert_eq!(
        (st, &paused["name"], &paused["paused"]),
        (StatusCode::OK, &json!("slow"), &json!(true))
    );
    assert!(s.runtime.queue("slow").await.unwrap().paused);
    let (st, b) = s.call(Method::PUT, "/queues/%20/pause", None).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "empty_queue");

    let (_, page) = s.call(Method::GET, "/jobs?queue=slow", None).await;
    assert_eq!(
        (page["jobs"][0]["id"].clone(), page["matching"].clone()),
        (slow["id"].clone(), json!(1))
    );
    let (st, page) = s
        .call(
            Method::POST,
            "/jobs/cancel",
            Some(json!({"queue": "slow", "limit": 10})),
        )
        .await;
    assert_eq!((st, page["touched"].as_u64()), (StatusCode::OK, Some(1)), "{page}");
    let (_, untouched) = s
        .call(Method::GET, &format!("/jobs/{}", job["id"].as_str().unwrap()), None)
        .await;
    assert_eq!(untouched["status"], "pending");

    let (st, resumed) = s.call(Method::PUT, "/queues/slow/resume", None).await;
    assert_eq!(
        (st, &resumed["paused"], &resumed["cancelled"]),
        (StatusCode::OK, &json!(false), &json!(1))
    );
}

#[tokio::test]
async fn run_cancel_and_list() {
    let s = Server::start().await;
    let later = json!({"delay_ms": 3_600_000});
    let ran = s
        .submit(json!({"Created": {"sku": "a", "qty": 2}}), later.clone())
        .await;
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/jobs/{}/run", ran["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "completed");
    let cancelled = s.submit(json!({"Created": {"sku": "b", "qty": 1}}), later).await;
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/jobs/{}/cancel", cancelled["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (b["status"].as_str(), b["cancel"].as_str()),
        (Some("cancelled"), Some("cancelled"))
    );
    for _ in 0..3 {
        s.submit(json!({"Created": {"sku": "c", "qty": 1}}), json!({"priority": 1}))
            .await;
    }
    let mut seen = 0;
    let mut path = "/jobs?machine=order&limit=2".to_owned();
    loop {
        let (st, page) = s.call(Method::GET, &path, None).await;
        assert_eq!(st, StatusCode::OK);
        seen += page["jobs"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(next) => path = format!("/jobs?machine=order&limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, 5);
    let (_, page) = s.call(Method::GET, "/jobs?status=cancelled", None).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn errors_are_rfc_9457_problems() {
    let s = Server::start().await;
    let response = s
        .request(Method::GET, &format!("/jobs/{}", JobId::from_u128(7)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "urn:runekernel:problem:job_not_found");
    assert_eq!(body["title"], "Not Found");
    assert_eq!(body["status"], 404);
    assert_eq!(body["code"], "job_not_found");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("does not exist")),
        "{body}"
    );
    assert_eq!(body["message"], body["detail"]);
    let unauthorized = Client::new().get(format!("{}/jobs", s.base)).send().await.unwrap();
    assert_eq!(unauthorized.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn newest_first_with_how_many_match() {
    let s = Server::start().await;
    let mut ids = Vec::new();
    for sku in ["a", "b", "c", "d", "e"] {
        let job = s
            .submit(
                json!({"Created": {"sku": sku, "qty": 1}}),
                json!({"delay_ms": 3_600_000}),
            )
            .await;
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/jobs?order=newest&limit=2".to_owned();
    loop {
        let (st, page) = s.call(Method::GET, &path, None).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        assert_eq!(page["matching"], 5, "{page}");
        seen.extend(
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/jobs?order=newest&limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ids, "newest first, every job once");
    let (_, none) = s.call(Method::GET, "/jobs?status=failed&order=oldest", None).await;
    assert_eq!(
        (none["matching"].as_u64(), none["jobs"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
    let (st, b) = s.call(Method::GET, "/jobs?order=sideways", None).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn history_answers_the_path_taken() {
    let s = Server::start().await;
    let job = s.submit(json!({"Created": {"sku": "a", "qty": 1}}), json!({})).await;
    let id = job["id"].as_str().unwrap();
    s.runtime.wait::<Order>(id.parse().unwrap()).await.unwrap();
    let (st, history) = s.call(Method::GET, &format!("/jobs/{id}/history"), None).await;
    assert_eq!(st, StatusCode::OK);
    let steps: Vec<(Value, Value)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].clone(), e["to"].clone()))
        .collect();
    let mut edges = Vec::new();
    for (from, to) in &steps {
        if let (Some(from), Some(to)) = (from.as_str(), to.as_str()) {
            if from != to && !edges.contains(&json!([from, to])) {
                edges.push(json!([from, to]));
            }
        }
    }
    assert!(!edges.is_empty(), "{history}");
    assert_eq!(history["path"]["edges"], Value::Array(edges));
    assert_eq!(history["path"]["visited"][0], "Created");
}

#[tokio::test]
async fn the_event_stream_announces_changes() {
    let s = Server::start().await;
    let response = s.request(Method::GET, "/events").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let job = s
        .submit(
            json!({"Created": {"sku": "a", "qty": 1}}),
            json!({"delay_ms": 3_600_000}),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    s.call(Method::POST, &format!("/jobs/{id}/cancel"), None).await;
    let mut response = response;
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains(&id) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no event named the cancelled job: {text}");
    assert!(text.contains("event: changed"), "{text}");
    // The stream ends when the runtime shuts down.
    s.runtime.shutdown().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while response.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived the runtime");
}

#[tokio::test]
async fn the_visualizer_is_served_without_a_token() {
    let s = Server::start().await;
    let plain = Client::new();
    let page = plain.get(format!("{}/ui", s.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.text().await.unwrap().contains("./ui/runekernel_ui.js"));
    let wasm = plain
        .get(format!("{}/ui/runekernel_ui_bg.wasm", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    assert!(wasm.bytes().await.unwrap().starts_with(b"\0asm"));
    let glue = plain
        .get(format!("{}/ui/runekernel_ui.js", s.base))
        .send()
        .await
        .unwrap();
    assert!(glue.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let missing = plain.get(format!("{}/ui/secrets.txt", s.base)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let slash = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/ui/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(slash.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(slash.headers()["location"], "../ui");
}

#[tokio::test]
async fn machines_and_metrics() {
    let s = Server::start().await;
    let job = s.submit(json!({"Created": {"sku": "a", "qty": 1}}), json!({})).await;
    s.runtime
        .wait::<Order>(job["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    let (st, list) = s.call(Method::GET, "/machines", None).await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<&str> = list["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["job", "order"]);
    let (_, order) = s.call(Method::GET, "/machines/order", None).await;
    assert_eq!(order["counts"]["Shipped"]["completed"], 1);
    assert_eq!(order["totals"]["completed"], 1);
    assert!(order["mermaid"].as_str().unwrap().starts_with("stateDiagram-v2"));
    assert_eq!(order["transitions"].as_array().unwrap().len(), 4);
    let text = s
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("runekernel_jobs{machine=\"order\",state=\"Shipped\",status=\"completed\"} 1"),
        "{text}"
    );
    assert!(text.contains("runekernel_steps_total{machine=\"order\"} 2"), "{text}");
    assert!(
        text.contains("runekernel_step_duration_seconds_count{machine=\"order\"} 2"),
        "{text}"
    );
    assert!(text.contains("runekernel_heartbeat_failures_total 0"), "{text}");
}

fn methods() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH)
    ]
}

fn paths() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("jobs".to_owned()),
        Just("machines".to_owned()),
        Just("order".to_owned()),
        Just("state".to_owned()),
        Just("run".to_owned()),
        Just("cancel".to_owned()),
        Just("history".to_owned()),
        Just(JobId::from_u128(7).to_string()),
        "[a-zA-Z0-9%._~-]{0,12}",
    ];
    (
        proptest::collection::vec(segment, 0..4),
        proptest::option::of("[a-z=&0-9%]{0,20}"),
    )
        .prop_map(|(segments, query)| {
            let mut path = format!("/{}", segments.join("/"));
            if let Some(query) = query {
                path.push('?');
                path.push_str(&query);
            }
            path
        })
}

fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        Just(br#"{"machine":"order","state":{"Created":{"sku":"a","qty":1}}}"#.to_vec()),
        Just(br#"{"state":{"Paid":{"amount_cents":1}}}"#.to_vec()),
        Just(br#"{"machine":"order","state":"Cancelled","options":{"delay_ms":-1}}"#.to_vec()),
        "\\{\"[a-z]{1,6}\":[0-9\\[\\]\"a-z{}:,]{0,30}\\}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_get_a_5xx_or_hang(method in methods(), path in paths(), body in bodies(), json in any::<bool>()) {
        use tower::ServiceExt;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let runtime = Runtime::builder().register(Order::handler(Shop)).build().await.unwrap();
            let app = admin::router(runtime, AdminConfig::new(TOKEN).unwrap());
            let mut request = axum::http::Request::builder()
                .method(method.as_str())
                .uri(&path)
                .header("authorization", format!("Bearer {TOKEN}"));
            if json {
                request = request.header("content-type", "application/json");
            }
            let Ok(request) = request.body(axum::body::Body::from(body)) else { return Ok(()) };
            let response = tokio::time::timeout(Duration::from_secs(10), app.oneshot(request))
                .await
                .expect("the request must not hang")
                .unwrap();
            prop_assert!(response.status().as_u16() < 500, "{} {} -> {}", method, path, response.status());
            Ok(())
        })?;
    }
}

/// A documented path with its parameters filled in: `{id}` as `id`.
fn concrete(path: &str, id: &str) -> String {
    path.replace("{id}", id)
        .replace("{name}", "order")
        .replace("{file}", "runekernel_ui.js")
}

/// The statuses the document lists for `method` on `path`, if it has the
/// operation.
fn documented(doc: &Value, path: &str, method: &Method) -> Option<Vec<u16>> {
    let responses = doc["paths"][path][method.as_str().to_lowercase()]["responses"].as_object()?;
    Some(responses.keys().filter_map(|k| k.parse().ok()).collect())
}

/// Whether the document lets anyone call `method` on `path`: its
/// security requirements include the empty one.
fn is_public(doc: &Value, path: &str, method: &Method) -> bool {
    doc["paths"][path][method.as_str().to_lowercase()]["security"]
        .as_array()
        .is_some_and(|requirements| requirements.iter().any(|r| r.as_object().is_some_and(|r| r.is_empty())))
}

#[tokio::test]
async fn a_read_only_token_reads_everything_and_changes_nothing() {
    assert_eq!(
        AdminConfig::new(TOKEN).unwrap().read_only_token(TOKEN).unwrap_err(),
        admin::TokenError::Reused
    );
    let s = Server::start().await;
    let (_, doc) = s.call(Method::GET, "/openapi.json", None).await;
    let job = s
        .submit(
            json!({"Created": {"sku": "a", "qty": 1}}),
            json!({"delay_ms": 3_600_000}),
        )
        .await;
    let job = job["id"].as_str().unwrap().to_owned();
    let mut changes = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path == "/events" {
            continue; // its answer never ends
        }
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = json!({"machine": "order", "state": {"Created": {"sku": "b", "qty": 1}}});
            let response = s
                .client
                .request(method.clone(), format!("{}{}", s.base, concrete(path, &job)))
                .bearer_auth(READ_ONLY)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            if method == Method::GET {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{method} {path} reads: {status}"
                );
                continue;
            }
            changes += 1;
            let problem: Value = response.json().await.unwrap();
            assert_error(status, &problem, StatusCode::FORBIDDEN, "read_only_token");
            let statuses = documented(&doc, path, &method).unwrap();
            assert!(statuses.contains(&403), "{method} {path} documents 403");
        }
    }
    assert!(changes >= 8, "every operation that changes jobs was tried: {changes}");
    for (token, role) in [(TOKEN, "operator"), (READ_ONLY, "read_only")] {
        let (_, who) = s.call_as(token, Method::GET, "/whoami", None).await;
        assert_eq!(who["role"], role);
    }
    let (_, after) = s.call(Method::GET, &format!("/jobs/{job}"), None).await;
    assert_eq!(
        (after["status"].as_str(), after["version"].as_u64()),
        (Some("pending"), Some(0))
    );
}

#[tokio::test]
async fn a_machine_token_changes_only_its_machines_jobs() {
    let config = || AdminConfig::new(TOKEN).unwrap();
    assert_eq!(
        config().machine_token("x", TOKEN, ["order"]).unwrap_err(),
        admin::TokenError::Reused
    );
    assert!(matches!(
        config().machine_token("bad name", ORDERS, ["order"]),
        Err(admin::TokenError::BadName(_))
    ));
    assert!(matches!(
        config().machine_token("none", ORDERS, Vec::<String>::new()),
        Err(admin::TokenError::NoMachines(_))
    ));
    let s = Server::start().await;
    let (_, doc) = s.call(Method::GET, "/openapi.json", None).await;
    let later = json!({"delay_ms": 3_600_000});
    let job = s.submit(json!({"Created": {"sku": "a", "qty": 1}}), later).await;
    let job = job["id"].as_str().unwrap().to_owned();
    // Billing may change nothing of an order: every change, each with a
    // body that parses, is refused, and its 403 is documented.
    let mut refused = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            if method == Method::GET {
                continue;
            }
            let body = match path.as_str() {
                "/jobs" => json!({"machine": "order", "state": {"Created": {"sku": "b", "qty": 1}}}),
                "/jobs/{id}/state" => json!({"state": {"Paid": {"amount_cents": 1}}}),
                "/jobs/retry" | "/jobs/cancel" => json!({"machine": "order"}),
                _ => json!({}),
            };
            let (status, problem) = s
                .call_as(BILLING, method.clone(), &concrete(path, &job), Some(body))
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {problem}");
            assert!(
                documented(&doc, path, &method).unwrap().contains(&403),
                "{method} {path} documents 403"
            );
            refused += 1;
        }
    }
    assert!(
        refused >= 10,
        "every operation that changes something was tried: {refused}"
    );
    let (_, after) = s.call(Method::GET, &format!("/jobs/{job}"), None).await;
    assert_eq!(
        (after["status"].as_str(), after["version"].as_u64()),
        (Some("pending"), Some(0))
    );

    // Orders may change orders, and its changes name it in the history.
    let (cancel, _) = s
        .call_as(ORDERS, Method::POST, &format!("/jobs/{job}/cancel"), None)
        .await;
    let (retry, _) = s
        .call_as(ORDERS, Method::POST, &format!("/jobs/{job}/retry"), None)
        .await;
    assert_eq!((cancel, retry), (StatusCode::OK, StatusCode::OK));
    let (_, history) = s.call(Method::GET, &format!("/jobs/{job}/history"), None).await;
    let entries = history["history"].as_array().unwrap();
    assert_eq!(entries[0]["worker"], "admin", "the operator submitted it: {history}");
    assert_eq!(entries[1]["error"], "cancelled by admin:orders", "{history}");
    assert_eq!(entries[2]["worker"], "admin:orders", "{history}");
    let (status, problem) = s.call_as(ORDERS, Method::POST, "/jobs/cancel", Some(json!({}))).await;
    assert_error(status, &problem, StatusCode::FORBIDDEN, "operator_only");
    let (status, problem) = s.call_as(ORDERS, Method::PUT, "/queues/default/pause", None).await;
    assert_error(status, &problem, StatusCode::FORBIDDEN, "operator_only");
    let (_, who) = s.call_as(ORDERS, Method::GET, "/whoami", None).await;
    assert_eq!(
        who,
        json!({"role": "machines", "token": "orders", "machines": ["order"]})
    );
}

#[tokio::test]
async fn the_history_names_who_submitted_a_job_and_who_cancelled_it_while_it_ran() {
    const TASKS: &str = "tasks-token-0123456789";
    let runtime = Runtime::builder()
        .register(Task::handler(Scripted))
        .resource(Calls::default())
        .cancel_grace(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let config = AdminConfig::new(TOKEN)
        .unwrap()
        .machine_token("tasks", TASKS, ["task"])
        .unwrap();
    let s = Server::serve(runtime, config).await;
    let body = json!({"machine": "task", "state": {"Todo": {"mode": "wait-cancel"}}});
    let (status, job) = s.call_as(TASKS, Method::POST, "/jobs", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let job = format!("/jobs/{}", job["id"].as_str().unwrap());
    let status_is = |wanted: &'static str| {
        let (s, job) = (&s, &job);
        async move {
            for _ in 0..500 {
                let (_, now) = s.call(Method::GET, job, None).await;
                if now["status"] == wanted {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{job} never became {wanted}");
        }
    };
    status_is("running").await;
    let (status, cancel) = s.call_as(TASKS, Method::POST, &format!("{job}/cancel"), None).await;
    assert_eq!(
        (status, cancel["cancel"].as_str()),
        (StatusCode::OK, Some("requested")),
        "{cancel}"
    );
    status_is("cancelled").await;
    let (_, history) = s.call(Method::GET, &format!("{job}/history"), None).await;
    let entries = history["history"].as_array().unwrap();
    assert_eq!(entries[0]["worker"], "admin:tasks", "{history}");
    let last = entries.last().unwrap();
    assert_eq!(last["status"], "cancelled", "{history}");
    assert_eq!(last["error"], "cancelled by admin:tasks", "{history}");
    s.runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn periodic_jobs_and_retention_are_shown_and_a_pass_runs_on_demand() {
    let mut policies = runekernel::Policies::default();
    policies.retention.completed = Some(Duration::from_secs(60));
    policies.retention.failed = None;
    let nightly = runekernel::Schedule::cron("0 30 2 * * *").unwrap();
    let runtime = Runtime::builder()
        .register(Order::handler(Shop))
        .policies(policies)
        .periodic("nightly", nightly, || Order::Created {
            sku: "n".into(),
            qty: 1,
        })
        .build()
        .await
        .unwrap();
    let config = AdminConfig::new(TOKEN).unwrap().read_only_token(READ_ONLY).unwrap();
    let app = admin::router(runtime.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = Client::new();
    let call = |method: Method, path: &str, token: &str| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .send()
    };

    let periodic: Value = call(Method::GET, "/periodic", READ_ONLY)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nightly = &periodic["periodic"][0];
    assert_eq!(
        (&nightly["name"], &nightly["cron"]),
        (&json!("nightly"), &json!("0 30 2 * * *")),
        "{periodic}"
    );
    let next = nightly["next_tick_ms"].as_i64().unwrap();
    assert_eq!(
        next.rem_euclid(86_400_000),
        (2 * 60 + 30) * 60_000,
        "the next 02:30 UTC"
    );

    let retention: Value = call(Method::GET, "/retention", READ_ONLY)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        retention,
        json!({"completed_ms": 60_000, "failed_ms": null, "cancelled_ms": 604_800_000, "interval_ms": 60_000, "batch": 1000})
    );
    let refused = call(Method::POST, "/retention/prune", READ_ONLY).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let pass: Value = call(Method::POST, "/retention/prune", TOKEN)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pass, json!({"pruned": 0}), "nothing is old enough yet");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_document_matches_the_router() {
    let s = Server::start().await;
    let (_, doc) = s.call(Method::GET, "/openapi.json", None).await;
    // Redirects are answers to check, not to follow.
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let request = |method: &Method, path: &str| {
        client
            .request(method.clone(), format!("{}{path}", s.base))
            .bearer_auth(TOKEN)
    };
    let paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();

    assert!(paths.len() >= 15, "read the paths: {paths:?}");
    // A path the document does not have is not served either.
    for path in ["/job", "/jobs/x/y", "/machines/order/graph", "/ui/other/file"] {
        let response = request(&Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }

    let job = s
        .submit(
            json!({"Created": {"sku": "a", "qty": 1}}),
            json!({"delay_ms": 3_600_000}),
        )
        .await;
    let job = job["id"].as_str().unwrap().to_owned();
    let methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH];
    for path in &paths {
        for method in &methods {
            // With a token, an existing job and no body: whatever the router
            // answers must be documented, and an undocumented method is 405.
            let response = request(method, &concrete(path, &job)).send().await.unwrap();
            let status = response.status().as_u16();
            match documented(&doc, path, method) {
                Some(statuses) => {
                    assert!(
                        statuses.contains(&status),
                        "{method} {path} answered {status}, not in {statuses:?}"
                    )
                }
                None => assert_eq!(status, 405, "{method} {path} is not documented but answered {status}"),
            }
            let Some(statuses) = documented(&doc, path, method) else {
                continue;
            };
            // Without a token, a protected operation is 401.
            let public = is_public(&doc, path, method);
            let anonymous = client
                .request(method.clone(), format!("{}{}", s.base, concrete(path, &job)))
                .send()
                .await
                .unwrap();
            if public {
                assert_ne!(
                    anonymous.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} is public"
                );
            } else {
                assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
                assert!(statuses.contains(&401), "{method} {path} documents 401");
            }
            // A job id that is not one is 400; a body that is not JSON is 415.
            if path.contains("{id}") {
                let bad = request(method, &concrete(path, "not-an-id")).send().await.unwrap();
                let status = bad.status().as_u16();
                assert!(
                    statuses.contains(&status),
                    "{method} {path} with a bad id answered {status}"
                );
            }
            if doc["paths"][path][method.as_str().to_lowercase()]["requestBody"].is_object() {
                let text = request(method, &concrete(path, &job))
                    .header("content-type", "text/plain")
                    .body("hello")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{method} {path}");
                assert!(statuses.contains(&415), "{method} {path} documents 415");
            }
        }
    }

    // Once the runtime has shut down, every answer is still documented.
    s.runtime.shutdown().await.unwrap();
    for path in &paths {
        for method in &methods {
            let Some(statuses) = documented(&doc, path, method) else {
                continue;
            };
            let body = json!({"machine": "order", "state": {"Created": {"sku": "a", "qty": 1}}});
            let response = request(method, &concrete(path, &job)).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            assert!(
                statuses.contains(&status),
                "after shutdown, {method} {path} answered {status}, not in {statuses:?}"
            );
        }
    }
}
