//! Requests to the admin API, each with `Authorization: Bearer <token>`.

use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The API refused the token (401).
    Unauthorized,
    /// The API answered an error status; `body` is its answer as it came.
    Status { status: u16, body: String },
    /// No answer: the server is down or the network failed.
    Network(String),
}

impl Failure {
    /// A one-line description for the page's banner.
    pub fn message(&self) -> String {
        match self {
            Failure::Unauthorized => "The admin API refused this token (401). Type the admin token below.".to_owned(),
            Failure::Status { status, body } => format!("The admin API answered {status}: {body}"),
            Failure::Network(detail) => format!("The admin API did not answer: {detail}"),
        }
    }
}

/// The admin API at `base` (the path the router is mounted at, no trailing
/// slash), called with `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub base: String,
    pub token: String,
}

fn network(error: JsValue) -> Failure {
    let message = error
        .as_string()
        .or_else(|| error.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| "the browser could not send the request".to_owned());
    Failure::Network(message)
}

impl Api {
    /// Sends a request and returns the response when its status is a
    /// success.
    pub async fn fetch(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Response, Failure> {
        let headers = Headers::new().map_err(network)?;
        headers
            .set("Authorization", &format!("Bearer {}", self.token))
            .map_err(network)?;
        let init = RequestInit::new();
        init.set_method(method);
        if let Some(body) = body {
            headers.set("Content-Type", "application/json").map_err(network)?;
            init.set_body(&JsValue::from_str(&body.to_string()));
        }
        init.set_headers(&headers);
        let request = Request::new_with_str_and_init(&format!("{}{path}", self.base), &init).map_err(network)?;
        let window = crate::dom::window().ok_or_else(|| Failure::Network("no window".into()))?;
        let response: Response = JsFuture::from(window.fetch_with_request(&request))
            .await
            .map_err(network)?
            .dyn_into()
            .map_err(network)?;
        match response.status() {
            200..=299 => Ok(response),
            401 => Err(Failure::Unauthorized),
            status => Err(Failure::Status {
                status,
                body: text(&response).await.unwrap_or_default(),
            }),
        }
    }

    /// Sends a request and reads its JSON answer into `T`. (Through a
    /// `Value`: one JSON parser for every answer keeps the wasm smaller
    /// than one per type.)
    pub async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, Failure> {
        let response = self.fetch(method, path, body).await?;
        let text = text(&response).await?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| Failure::Network(format!("an answer that is not JSON ({e})")))?;
        serde_json::from_value(value).map_err(|e| Failure::Network(format!("an answer of another shape ({e})")))
    }

    /// `GET path`, read into `T`.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.send("GET", path, None).await
    }
}

async fn text(response: &Response) -> Result<String, Failure> {
    let promise = response.text().map_err(network)?;
    Ok(JsFuture::from(promise)
        .await
        .map_err(network)?
        .as_string()
        .unwrap_or_default())
}
