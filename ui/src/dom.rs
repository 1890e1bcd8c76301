//! Thin helpers over `web-sys` for what the UI does to the page: find
//! elements, replace their markup, toggle classes.

use wasm_bindgen::JsCast;
use web_sys::{Document, Element, Window};

pub fn window() -> Option<Window> {
    web_sys::window()
}

pub fn document() -> Option<Document> {
    window()?.document()
}

pub fn by_id(id: &str) -> Option<Element> {
    document()?.get_element_by_id(id)
}

/// Replaces the markup inside the element with id `id`, if there is one.
pub fn set_html(id: &str, html: &str) {
    if let Some(element) = by_id(id) {
        element.set_inner_html(html);
    }
}

/// Every element matching `selector`.
pub fn all(selector: &str) -> Vec<Element> {
    let Some(list) = document().and_then(|d| d.query_selector_all(selector).ok()) else {
        return Vec::new();
    };
    (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|node| node.dyn_into::<Element>().ok())
        .collect()
}

/// The element an event happened on, or its nearest ancestor, matching
/// `selector`.
pub fn closest(event: &web_sys::Event, selector: &str) -> Option<Element> {
    let target = event.target()?.dyn_into::<Element>().ok()?;
    target.closest(selector).ok().flatten()
}

/// Adds or removes `class` on `element`.
pub fn toggle(element: &Element, class: &str, on: bool) {
    let list = element.class_list();
    let _ = if on { list.add_1(class) } else { list.remove_1(class) };
}

/// Shows or hides the element with id `id`.
pub fn show(id: &str, visible: bool) {
    if let Some(element) = by_id(id) {
        if visible {
            let _ = element.remove_attribute("hidden");
        } else {
            let _ = element.set_attribute("hidden", "");
        }
    }
}

/// The value of the `<input>`, `<select>` or `<textarea>` with id `id`.
pub fn value(id: &str) -> String {
    let Some(element) = by_id(id) else {
        return String::new();
    };
    if let Some(input) = element.dyn_ref::<web_sys::HtmlInputElement>() {
        input.value()
    } else if let Some(select) = element.dyn_ref::<web_sys::HtmlSelectElement>() {
        select.value()
    } else if let Some(area) = element.dyn_ref::<web_sys::HtmlTextAreaElement>() {
        area.value()
    } else {
        String::new()
    }
}
