//! The admin API's event stream (`GET /events`, server-sent events) read
//! with `fetch`, since `EventSource` cannot send the token header.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStreamDefaultReader;

use crate::api::{Api, Failure};

/// Splits complete events off the front of `buffer` and returns their
/// `event:` names (`message` for an event without one); an incomplete
/// event stays in `buffer`.
pub fn take_events(buffer: &mut String) -> Vec<String> {
    let mut names = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let block: String = buffer.drain(..end + 2).collect();
        let mut name = None;
        let mut has_data = false;
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = Some(value.trim().to_owned());
            } else if line.starts_with("data:") {
                has_data = true;
            }
        }
        if name.is_some() || has_data {
            names.push(name.unwrap_or_else(|| "message".to_owned()));
        }
    }
    names
}

fn failed(error: JsValue) -> Failure {
    Failure::Network(error.as_string().unwrap_or_else(|| "the event stream broke".to_owned()))
}

/// Reads the stream until it ends, calling `on_event` with each event's
/// name. `on_open` runs once the API accepted the request.
pub async fn follow(api: &Api, on_open: impl Fn(), on_event: impl Fn(&str)) -> Result<(), Failure> {
    let response = api.fetch("GET", "/events", None).await?;
    let body = response
        .body()
        .ok_or_else(|| Failure::Network("the event stream has no body".into()))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().dyn_into().map_err(|o| failed(o.into()))?;
    on_open();
    let mut buffer = String::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(failed)?;
        if Reflect::get(&chunk, &"done".into()).map_err(failed)?.as_bool() == Some(true) {
            return Ok(());
        }
        let bytes = Uint8Array::new(&Reflect::get(&chunk, &"value".into()).map_err(failed)?).to_vec();
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        for name in take_events(&mut buffer) {
            on_event(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_complete_events_and_keeps_the_rest() {
        let mut buffer = String::from(": ping\n\nevent: changed\ndata: {\"jobs\":1}\n\nevent: chan");
        assert_eq!(take_events(&mut buffer), ["changed"]);
        assert_eq!(buffer, "event: chan");
        buffer.push_str("ged\ndata: {}\n\n");
        assert_eq!(take_events(&mut buffer), ["changed"]);
        assert!(buffer.is_empty());
    }
}
