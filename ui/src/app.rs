//! The running application: what the page shows now, loading a view,
//! keeping it live, and one listener per kind of DOM event that dispatches
//! every control (`data-action`).
//!
//! State lives in one `App` in a thread-local `RefCell` (the browser runs
//! the UI on one thread). No borrow is held across an `await`: a task
//! copies what it needs, awaits, then stores what it got, and drops its
//! result if the operator moved to another view meanwhile (`generation`).

use std::cell::RefCell;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Event, MouseEvent, WheelEvent};

use crate::action::Action;
use crate::api::{Api, Failure};
use crate::dom;
use crate::graph::counts_markup;
use crate::html::escape;
use crate::model::{Acted, History, Job, JobPage, Machine, Machines, WhoAmI};
use crate::panzoom::ViewBox;
use crate::route::{encode, Filter, Route};
use crate::{stream, views};

/// Where the token is kept for the browser tab's life.
const TOKEN_KEY: &str = "runekernel-admin-token";
/// Jobs per page of the list.
const PAGE_SIZE: usize = 50;
/// How often a view is refreshed when the event stream is down, in ms.
const POLL_MS: i32 = 1500;

#[derive(Default)]
struct App {
    api: Option<Api>,
    route: Option<Route>,
    /// Bumped on every navigation; a load started under an older one is
    /// stale.
    generation: u64,
    machines: Vec<Machine>,
    /// The job list's cursors: the `after` of each page up to this one.
    cursors: Vec<Option<String>>,
    /// The next page's cursor.
    next: Option<String>,
    /// The job shown, as last loaded, to tell whether it changed.
    job: Option<Job>,
    /// The job list's page shown, likewise.
    page: Option<JobPage>,
    /// The action waiting for the operator's confirmation.
    pending: Option<Action>,
    /// The graph's pan and zoom, kept across live refreshes.
    view: Option<ViewBox>,
    /// A drag in progress: the last pointer position.
    drag: Option<(f64, f64)>,
    /// Whether the event stream is connected.
    live: bool,
    /// A change was announced and not yet shown.
    dirty: bool,
    /// What the token may do, once asked (`GET /whoami`).
    who: Option<WhoAmI>,
}

thread_local! {
    static APP: RefCell<App> = RefCell::new(App::default());
}

fn with<R>(f: impl FnOnce(&mut App) -> R) -> R {
    APP.with(|app| f(&mut app.borrow_mut()))
}

/// Starts the UI: reads the token, listens, loads the view in the URL and
/// follows the event stream.
pub fn start() {
    listen("click", on_click);
    listen("change", on_change);
    listen("mouseover", on_hover);
    listen("mouseout", |_| highlight_state(None));
    listen("mousedown", on_drag_start);
    listen("mousemove", on_drag);
    listen("mouseup", |_| with(|app| app.drag = None));
    listen_passive_false("wheel", on_wheel);
    if let Some(window) = dom::window() {
        let on_hash = Closure::<dyn FnMut(Event)>::new(|_| navigate());
        let _ = window.add_event_listener_with_callback("hashchange", on_hash.as_ref().unchecked_ref());
        // Installed once for the page's life.
        on_hash.forget();
    }
    match initial_token() {
        Some(token) => use_token(token),
        None => ask_for_token("Type the admin token to see what runs."),
    }
    spawn_local(follow_events());
    spawn_local(refresh_loop());
}

fn listen(kind: &str, handler: fn(Event)) {
    if let Some(document) = dom::document() {
        let closure = Closure::<dyn FnMut(Event)>::new(handler);
        let _ = document.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
        closure.forget();
    }
}

/// As [`listen`], for an event whose default the handler may prevent
/// (wheel scrolling the page).
fn listen_passive_false(kind: &str, handler: fn(Event)) {
    if let Some(document) = dom::document() {
        let closure = Closure::<dyn FnMut(Event)>::new(handler);
        let options = web_sys::AddEventListenerOptions::new();
        options.set_passive(false);
        let _ = document.add_event_listener_with_callback_and_add_event_listener_options(
            kind,
            closure.as_ref().unchecked_ref(),
            &options,
        );
        closure.forget();
    }
}

/// The token from the URL's fragment (`#token=...`, which is never sent to
/// the server; it is then removed from the address bar) or from the tab's
/// session storage.
fn initial_token() -> Option<String> {
    let window = dom::window()?;
    let storage = window.session_storage().ok().flatten();
    let hash = window.location().hash().unwrap_or_default();
    if let Some(token) = hash.strip_prefix("#token=") {
        let token = crate::route::decode(token.split('&').next().unwrap_or_default());
        if let Some(storage) = &storage {
            let _ = storage.set_item(TOKEN_KEY, &token);
        }
        if let Ok(history) = window.history() {
            let path = window.location().pathname().unwrap_or_default();
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&format!("{path}#/")));
        }
        return Some(token).filter(|t| !t.is_empty());
    }
    storage?.get_item(TOKEN_KEY).ok().flatten().filter(|t| !t.is_empty())
}

/// The path the admin router is mounted at: the page's path without its
/// trailing `/ui`.
fn api_base() -> String {
    let path = dom::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default();
    let path = path.trim_end_matches('/');
    path.strip_suffix("/ui").unwrap_or(path).to_owned()
}

fn use_token(token: String) {
    with(|app| {
        app.api = Some(Api {
            base: api_base(),
            token,
        });
        app.who = None;
    });
    dom::show("token-panel", false);
    banner(None);
    navigate();
}

fn ask_for_token(message: &str) {
    dom::set_html("token-message", &escape(message));
    dom::show("token-panel", true);
    dom::set_html("view", "");
}

/// Shows `message` in the banner, or hides it.
fn banner(message: Option<&str>) {
    dom::set_html("banner", &message.map(escape).unwrap_or_default());
    dom::show("banner", message.is_some());
}

fn show_failure(failure: &Failure) {
    if *failure == Failure::Unauthorized {
        with(|app| app.api = None);
        if let Some(storage) = dom::window().and_then(|w| w.session_storage().ok().flatten()) {
            let _ = storage.remove_item(TOKEN_KEY);
        }
        ask_for_token(&failure.message());
        banner(Some(&failure.message()));
    } else {
        banner(Some(&failure.message()));
    }
}

/// Shows the view the URL names, from scratch.
fn navigate() {
    let fragment = dom::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    let route = Route::parse(&fragment);
    let shown = route.clone();
    with(|app| {
        if app.route.as_ref() != Some(&route) {
            app.cursors = vec![None];
            app.next = None;
            app.view = None;
            app.job = None;
            app.page = None;
        }
        app.route = Some(route);
        app.generation += 1;
    });
    let section = match shown {
        Route::Machines | Route::Machine(_) => "machines",
        Route::Jobs(_) | Route::Job(_) => "jobs",
    };
    for link in dom::all("nav.top a") {
        dom::toggle(
            &link,
            "here",
            link.get_attribute("data-view").as_deref() == Some(section),
        );
    }
    spawn_local(load(true));
}

/// Loads the current view. `full` renders it from scratch; otherwise only
/// what changed is updated, keeping pan, zoom and what the operator typed.
async fn load(full: bool) {
    let (api, route, generation) = with(|app| (app.api.clone(), app.route.clone(), app.generation));
    let (Some(api), Some(route)) = (api, route) else {
        return;
    };
    let result = match &route {
        Route::Machines => load_machines(&api, generation, full).await,
        Route::Machine(name) => load_machine(&api, name, generation, full).await,
        Route::Jobs(filter) => load_jobs(&api, filter, generation, full).await,
        Route::Job(id) => load_job(&api, id, generation, full).await,
    };
    match result {
        Ok(()) => banner(None),
        Err(failure) => show_failure(&failure),
    }
}

fn current(generation: u64) -> bool {
    with(|app| app.generation == generation)
}

async fn load_machines(api: &Api, generation: u64, full: bool) -> Result<(), Failure> {
    let list: Vec<Machine> = machines(api).await?;
    let unchanged = with(|app| app.machines == list);
    if current(generation) && (full || !unchanged) {
        dom::set_html("view", &views::machines(&list));
        with(|app| app.machines = list);
    }
    Ok(())
}

async fn machines(api: &Api) -> Result<Vec<Machine>, Failure> {
    let list: Machines = api.get("/machines").await?;
    Ok(list.machines)
}

async fn load_machine(api: &Api, name: &str, generation: u64, full: bool) -> Result<(), Failure> {
    let machine: Machine = api.get(&format!("/machines/{}", encode(name))).await?;
    if !current(generation) {
        return Ok(());
    }
    if full || dom::all("svg.graph").is_empty() {
        dom::set_html("view", &views::machine(&machine));
        apply_view();
    } else {
        update_counts(&machine);
        dom::set_html("totals", &views::totals(&machine));
    }
    Ok(())
}

/// Rewrites each state's counts line in place.
fn update_counts(machine: &Machine) {
    for element in dom::all("[data-counts]") {
        if let Some(state) = element.get_attribute("data-counts") {
            element.set_inner_html(&counts_markup(machine, &state));
        }
    }
}

async fn load_jobs(api: &Api, filter: &Filter, generation: u64, full: bool) -> Result<(), Failure> {
    let after = with(|app| app.cursors.last().cloned().flatten());
    let mut query = filter.query();
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(&format!("order=newest&limit={PAGE_SIZE}"));
    if let Some(after) = &after {
        query.push_str(&format!("&after={}", encode(after)));
    }
    let list = machines(api).await?;
    let page: JobPage = api.get(&format!("/jobs?{query}")).await?;
    // Rendered again only when it changed, so a live refresh does not
    // close a list the operator has open.
    let unchanged = with(|app| app.page.as_ref() == Some(&page));
    if current(generation) && (full || !unchanged) {
        let number = with(|app| app.cursors.len());
        dom::set_html("view", &views::jobs(&list, filter, &page, number));
        with(|app| {
            app.machines = list;
            app.next = page.next.clone();
            app.page = Some(page);
        });
    }
    Ok(())
}

async fn load_job(api: &Api, id: &str, generation: u64, full: bool) -> Result<(), Failure> {
    let path = format!("/jobs/{}", encode(id));
    let job: Job = api.get(&path).await?;
    let unchanged = with(|app| app.job.as_ref() == Some(&job));
    if !full && unchanged {
        return Ok(());
    }
    let history: History = api.get(&format!("{path}/history")).await?;
    let machine: Machine = api.get(&format!("/machines/{}", encode(&job.machine))).await?;
    let who = match with(|app| app.who.clone()) {
        Some(who) => who,
        None => {
            let who: WhoAmI = api.get("/whoami").await?;
            with(|app| app.who = Some(who.clone()));
            who
        }
    };
    if current(generation) {
        let may_change = who.may_change(&job.machine);
        dom::set_html("view", &views::job(&machine, &job, &history, may_change));
        apply_view();
        with(|app| app.job = Some(job));
    }
    Ok(())
}

/// Follows the event stream for as long as the page lives; while it is
/// down, [`refresh_loop`] polls.
async fn follow_events() {
    loop {
        let api = with(|app| app.api.clone());
        if let Some(api) = api {
            let result = stream::follow(
                &api,
                || set_live(true),
                |name| {
                    if name == "changed" {
                        with(|app| app.dirty = true);
                    }
                },
            )
            .await;
            set_live(false);
            if let Err(Failure::Unauthorized) = result {
                show_failure(&Failure::Unauthorized);
            }
        }
        sleep(2000).await;
    }
}

fn set_live(live: bool) {
    with(|app| app.live = live);
    if let Some(indicator) = dom::by_id("live") {
        indicator.set_text_content(Some(if live { "live" } else { "polling" }));
        dom::toggle(&indicator, "on", live);
    }
}

/// Refreshes the view when a change was announced, or every
/// [`POLL_MS`] while the stream is down.
async fn refresh_loop() {
    let mut waited = 0;
    loop {
        sleep(250).await;
        waited += 250;
        let (dirty, live) = with(|app| (app.dirty, app.live));
        if dirty || (!live && waited >= POLL_MS) {
            waited = 0;
            with(|app| app.dirty = false);
            load(false).await;
        }
    }
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = dom::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn on_click(event: Event) {
    let Some(control) = dom::closest(&event, "[data-action]") else {
        // A click on a state of a machine's graph lists its jobs.
        if let (Some(state), Some(Route::Machine(machine))) =
            (dom::closest(&event, "[data-state]"), with(|app| app.route.clone()))
        {
            let filter = Filter {
                machine: Some(machine),
                state: state.get_attribute("data-state"),
                status: None,
            };
            go(&Route::Jobs(filter));
        }
        return;
    };
    let action = control.get_attribute("data-action").unwrap_or_default();
    match action.as_str() {
        "page-next" => {
            with(|app| {
                let next = app.next.clone();
                app.cursors.push(next);
            });
            spawn_local(load(true));
        }
        "page-prev" => {
            with(|app| {
                if app.cursors.len() > 1 {
                    app.cursors.pop();
                }
            });
            spawn_local(load(true));
        }
        "cancel" => confirm(Action::Cancel),
        "run" => confirm(Action::RunNow),
        "retry" => confirm(Action::Retry),
        "move" => {
            let target = dom::value("move-target");
            let option = dom::all("#move-target option")
                .into_iter()
                .find(|o| o.get_attribute("value").as_deref() == Some(target.as_str()));
            let json_name = option
                .as_ref()
                .and_then(|o| o.get_attribute("data-json-name"))
                .unwrap_or_else(|| target.clone());
            let carries = option.and_then(|o| o.get_attribute("data-carries")).as_deref() == Some("true");
            match Action::move_to(&target, &json_name, carries, &dom::value("move-payload")) {
                Ok(action) => confirm(action),
                Err(message) => result(&format!(r#"<p class="error">{}</p>"#, escape(&message))),
            }
        }
        "confirm-yes" => {
            dom::show("modal", false);
            if let Some(action) = with(|app| app.pending.take()) {
                spawn_local(perform(action));
            }
        }
        "confirm-no" => {
            dom::show("modal", false);
            with(|app| app.pending = None);
        }
        "timeline" => pick_edge(&control),
        "zoom-in" => zoom_by(1.25, 0.5, 0.5),
        "zoom-out" => zoom_by(0.8, 0.5, 0.5),
        "zoom-reset" => {
            with(|app| app.view = None);
            apply_view();
        }
        "save-token" => {
            event.prevent_default();
            let token = dom::value("token-input").trim().to_owned();
            if token.is_empty() {
                ask_for_token("The token is empty: type the admin token.");
                return;
            }
            if let Some(storage) = dom::window().and_then(|w| w.session_storage().ok().flatten()) {
                let _ = storage.set_item(TOKEN_KEY, &token);
            }
            use_token(token);
        }
        _ => {}
    }
}

fn on_change(event: Event) {
    let Some(control) = dom::closest(&event, "[data-action]") else {
        return;
    };
    match control.get_attribute("data-action").as_deref() {
        Some("filter") => {
            let pick = |name: &str| {
                dom::all(&format!("select[name={name}]"))
                    .first()
                    .and_then(|s| s.dyn_ref::<web_sys::HtmlSelectElement>().map(|s| s.value()))
                    .filter(|v| !v.is_empty())
            };
            let mut filter = Filter {
                machine: pick("machine"),
                state: pick("state"),
                status: pick("status"),
            };
            // A state of another machine would match nothing.
            if control.get_attribute("data-arg").as_deref() == Some("machine") {
                filter.state = None;
            }
            go(&Route::Jobs(filter));
        }
        Some("move-target") => {
            let target = dom::value("move-target");
            let carries = dom::all("#move-target option").into_iter().any(|o| {
                o.get_attribute("value").as_deref() == Some(target.as_str())
                    && o.get_attribute("data-carries").as_deref() == Some("true")
            });
            dom::show("move-payload", carries);
        }
        _ => {}
    }
}

fn go(route: &Route) {
    if let Some(window) = dom::window() {
        let _ = window.location().set_hash(&route.fragment());
    }
}

/// Asks the operator to confirm `action` on the job shown.
fn confirm(action: Action) {
    let Some(job) = with(|app| app.job.as_ref().map(|j| j.id.clone())) else {
        return;
    };
    dom::set_html("modal-question", &escape(&action.question(&job)));
    with(|app| app.pending = Some(action));
    dom::show("modal", true);
}

fn result(html: &str) {
    dom::set_html("action-result", html);
}

async fn perform(action: Action) {
    let (api, job) = with(|app| (app.api.clone(), app.job.as_ref().map(|j| j.id.clone())));
    let (Some(api), Some(job)) = (api, job) else {
        return;
    };
    let (method, path, body) = action.request(&job);
    match api.send::<Acted>(method, &path, body.as_ref()).await {
        Ok(answer) => {
            load(true).await;
            let status = answer.status.as_deref().unwrap_or("unknown");
            let cancel = answer.cancel.map(|c| format!(" ({c})")).unwrap_or_default();
            result(&format!(
                r#"<p class="ok">Done: the job is now {}{}.</p>"#,
                escape(status),
                escape(&cancel)
            ));
        }
        Err(Failure::Status { status, body }) => result(&format!(
            r#"<p class="error">The admin API answered {status}:</p><pre class="api-error">{}</pre>"#,
            escape(&body)
        )),
        Err(failure) => show_failure(&failure),
    }
}

/// Highlights the edge of a timeline entry (or, for the submission, its
/// state).
fn pick_edge(row: &web_sys::Element) {
    for old in dom::all(".picked") {
        dom::toggle(&old, "picked", false);
    }
    dom::toggle(row, "picked", true);
    let from = row.get_attribute("data-from").unwrap_or_default();
    let to = row.get_attribute("data-to").unwrap_or_default();
    if from.is_empty() || from == to {
        for state in dom::all("[data-state]") {
            dom::toggle(
                &state,
                "picked",
                state.get_attribute("data-state").as_deref() == Some(to.as_str()),
            );
        }
        return;
    }
    for edge in dom::all(".edge") {
        let matches = edge.get_attribute("data-from").as_deref() == Some(from.as_str())
            && edge.get_attribute("data-to").as_deref() == Some(to.as_str());
        dom::toggle(&edge, "picked", matches);
    }
}

fn on_hover(event: Event) {
    let state = dom::closest(&event, "svg.graph [data-state]").and_then(|s| s.get_attribute("data-state"));
    highlight_state(state.as_deref());
}

/// Highlights the edges into and out of `state`, or clears it.
fn highlight_state(state: Option<&str>) {
    for edge in dom::all(".edge") {
        let touches = state.is_some_and(|s| {
            edge.get_attribute("data-from").as_deref() == Some(s) || edge.get_attribute("data-to").as_deref() == Some(s)
        });
        dom::toggle(&edge, "hover", touches);
    }
    for node in dom::all("[data-state]") {
        let here = state.is_some() && node.get_attribute("data-state").as_deref() == state;
        dom::toggle(&node, "hover", here);
    }
}

/// The graph on the page, its drawing's size and the view shown.
fn graph() -> Option<(web_sys::Element, f64, f64, ViewBox)> {
    let svg = dom::all("svg.graph").into_iter().next()?;
    let size = |name: &str| {
        svg.get_attribute(name)
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(1.0, |v| v as f64)
    };
    let (width, height) = (size("data-width"), size("data-height"));
    let view = with(|app| app.view).unwrap_or(ViewBox::fit(width, height));
    Some((svg, width, height, view))
}

/// Sets the graph's `viewBox` to the kept pan and zoom.
fn apply_view() {
    if let Some((svg, _, _, view)) = graph() {
        let _ = svg.set_attribute("viewBox", &view.attribute());
    }
}

fn zoom_by(factor: f64, fx: f64, fy: f64) {
    if let Some((_, width, _, view)) = graph() {
        with(|app| app.view = Some(view.zoom(factor, fx, fy, width)));
        apply_view();
    }
}

fn on_wheel(event: Event) {
    let Some(svg) = dom::closest(&event, "svg.graph") else {
        return;
    };
    let Some(wheel) = event.dyn_ref::<WheelEvent>() else {
        return;
    };
    event.prevent_default();
    let rect = svg.get_bounding_client_rect();
    let fx = (f64::from(wheel.client_x()) - rect.left()) / rect.width().max(1.0);
    let fy = (f64::from(wheel.client_y()) - rect.top()) / rect.height().max(1.0);
    zoom_by(if wheel.delta_y() < 0.0 { 1.15 } else { 1.0 / 1.15 }, fx, fy);
}

fn on_drag_start(event: Event) {
    if dom::closest(&event, "svg.graph").is_none() {
        return;
    }
    if let Some(mouse) = event.dyn_ref::<MouseEvent>() {
        with(|app| app.drag = Some((f64::from(mouse.client_x()), f64::from(mouse.client_y()))));
    }
}

fn on_drag(event: Event) {
    let Some(mouse) = event.dyn_ref::<MouseEvent>() else {
        return;
    };
    let Some((last_x, last_y)) = with(|app| app.drag) else {
        return;
    };
    let (x, y) = (f64::from(mouse.client_x()), f64::from(mouse.client_y()));
    if let Some((svg, _, _, view)) = graph() {
        let screen = svg.get_bounding_client_rect().width();
        with(|app| {
            app.view = Some(view.pan(x - last_x, y - last_y, screen));
            app.drag = Some((x, y));
        });
        apply_view();
    }
}
