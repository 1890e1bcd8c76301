//! RuneKernel's execution-graph visualizer: a WebAssembly UI that the admin
//! router serves at `/ui`.
//!
//! It shows every registered machine with its counts; a machine's graph
//! (every declared state and transition, laid out by `runekernel-layout`)
//! with live counts per state; the job list, filtered and paged; and one
//! job's path on the graph with its history as a timeline. From a job's
//! view an operator can cancel it, run it now, retry it once it failed or
//! was cancelled, or move it along a declared transition, each after a
//! confirmation.
//!
//! The page calls the admin API with the token the operator typed, or the
//! one in the URL's fragment (`/ui#token=...`), kept in the tab's session
//! storage. Counts stay live through the API's event stream (`GET
//! /events`), polled when the stream is down.
//!
//! The views are plain functions from the API's answers to markup, tested
//! natively; `app` is the only module that holds state. The crate is
//! compiled to `wasm32-unknown-unknown` by `runekernel-ui-build`, which
//! writes the assets the `runekernel` crate embeds.
//!
//! ```
//! use runekernel_ui::route::{Filter, Route};
//!
//! let failed = Route::Jobs(Filter { status: Some("failed".into()), ..Filter::default() });
//! assert_eq!(failed.fragment(), "#/jobs?status=failed");
//! assert_eq!(Route::parse("#/jobs?status=failed"), failed);
//! ```

#![warn(missing_docs)]

mod action;
mod api;
mod app;
mod dom;
mod graph;
mod html;
mod model;
mod panzoom;
pub mod route;
mod stream;
mod views;

use wasm_bindgen::prelude::wasm_bindgen;

/// Runs when the page loads the module.
#[wasm_bindgen(start)]
pub fn start() {
    app::start();
}
