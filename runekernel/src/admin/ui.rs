//! `GET /ui`: the execution-graph visualizer, a WebAssembly app (crate
//! `runekernel-ui`) whose page and assets are embedded in this crate, so
//! serving it needs no wasm toolchain and no files on disk. The page and
//! assets need no token; the app sends the token with every API call.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::{ApiError, Problem};

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

/// The execution-graph visualizer (a WebAssembly app); it asks for the
/// token and sends it with every call.
#[utoipa::path(
    get,
    path = "/ui",
    operation_id = "ui_page",
    tag = "ui",
    security(()),
    responses((status = 200, description = "The page", body = String, content_type = "text/html"))
)]
pub(crate) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE.as_bytes())
}

/// Redirects to `/ui`, so relative asset paths resolve one way.
#[utoipa::path(
    get,
    path = "/ui/",
    operation_id = "ui_redirect",
    tag = "ui",
    security(()),
    responses((status = 308, description = "To `../ui`"))
)]
pub(crate) async fn slash() -> Redirect {
    Redirect::permanent("../ui")
}

/// The visualizer's assets.
#[utoipa::path(
    get,
    path = "/ui/{file}",
    operation_id = "ui_file",
    tag = "ui",
    security(()),
    params(("file" = String, Path, description = "`runekernel_ui.js` (the glue) or `runekernel_ui_bg.wasm` (the app)")),
    responses(
        (status = 200, description = "The asset"),
        (status = 404, description = "No such asset", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn file(Path(name): Path<String>) -> Result<Response, ApiError> {
    match name.as_str() {
        "runekernel_ui.js" => Ok(asset("text/javascript; charset=utf-8", GLUE)),
        "runekernel_ui_bg.wasm" => Ok(asset("application/wasm", WASM)),
        _ => Err(ApiError::not_found("not_found", format!("the UI has no file `{name}`"))),
    }
}
