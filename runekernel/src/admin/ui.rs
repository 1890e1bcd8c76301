//! `GET /ui`: the execution-graph visualizer, a WebAssembly app (crate
//! `runekernel-ui`) whose page and assets are embedded in this crate, so
//! serving it needs no wasm toolchain and no files on disk. The page and
//! assets need no token; the app sends the token with every API call.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The page: its markup, styles and the module loader.
const PAGE: &str = include_str!("ui/index.html");
/// wasm-bindgen's glue, written by `runekernel-ui-build`.
const GLUE: &[u8] = include_bytes!("ui/runekernel_ui.js");
/// The app, written by `runekernel-ui-build`.
const WASM: &[u8] = include_bytes!("ui/runekernel_ui_bg.wasm");

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE.as_bytes())
}

pub(crate) async fn file(Path(name): Path<String>) -> Result<Response, ApiError> {
    match name.as_str() {
        "runekernel_ui.js" => Ok(asset("text/javascript; charset=utf-8", GLUE)),
        "runekernel_ui_bg.wasm" => Ok(asset("application/wasm", WASM)),
        _ => Err(ApiError::not_found("not_found", format!("the UI has no file `{name}`"))),
    }
}
