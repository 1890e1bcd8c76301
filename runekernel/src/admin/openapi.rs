//! The OpenAPI 3.0 document served at `/openapi.json`.

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn job_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Job" } } } })
}

fn id_parameter() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } })
}

fn json_body(schema: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

/// The document.
pub(crate) fn document() -> Value {
    let mut doc = operations();
    // Every protected operation reaches storage, so may also find it
    // failing (the public ones that do, /health, say so themselves).
    if let Some(paths) = doc["paths"].as_object_mut() {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|p| p.values_mut())
        {
            let public = operation["security"].as_array().is_some_and(Vec::is_empty);
            if !public {
                operation["responses"]["500"] = error_response("Storage failed");
            }
        }
    }
    doc
}

/// Every operation, with the answers particular to it.
fn operations() -> Value {
    let unauthorized = error_response("Missing or wrong bearer token");
    let not_found = error_response("No such job");
    let bad = error_response("Malformed JSON, or a state that does not decode");
    let bad_id = error_response("Not a job id");
    let not_json = error_response("The body is not sent as `application/json`");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "RuneKernel admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Submit, inspect, move, run and cancel jobs, and see each machine's graph with live counts. Every error is an RFC 9457 problem (`application/problem+json`) with a stable `code`."
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/health": { "get": {
                "summary": "Liveness and storage check", "security": [],
                "responses": { "200": { "description": "Healthy", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "500": error_response("Storage failed") }
            } },
            "/openapi.json": { "get": {
                "summary": "This document", "security": [],
                "responses": { "200": { "description": "The OpenAPI document" } }
            } },
            "/metrics": { "get": {
                "summary": "Prometheus metrics: jobs by machine, state and lifecycle; steps, failures, retries; step latency",
                "responses": { "200": { "description": "Prometheus text format", "content": { "text/plain": { "schema": { "type": "string" } } } }, "401": unauthorized }
            } },
            "/jobs": {
                "post": {
                    "summary": "Submit a job",
                    "requestBody": json_body("Submit"),
                    "responses": {
                        "201": job_response("The submitted job (or the earlier job with the same idempotency key)"),
                        "400": bad, "401": unauthorized,
                        "404": error_response("No such machine"),
                        "413": error_response("Body over the size limit"),
                        "415": not_json.clone(),
                        "422": error_response("The state is not the machine's initial state")
                    }
                },
                "get": {
                    "summary": "List jobs, oldest or newest first, with a cursor and how many match",
                    "parameters": [
                        { "name": "machine", "in": "query", "schema": { "type": "string" } },
                        { "name": "state", "in": "query", "schema": { "type": "string" } },
                        { "name": "status", "in": "query", "schema": { "$ref": "#/components/schemas/Status" } },
                        { "name": "after", "in": "query", "schema": { "type": "string", "format": "uuid" } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 50 } },
                        { "name": "order", "in": "query", "description": "`oldest` (smallest id) or `newest` first; `after` continues in that order",
                          "schema": { "type": "string", "enum": ["oldest", "newest"], "default": "oldest" } }
                    ],
                    "responses": {
                        "200": { "description": "A page of jobs", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/JobPage" } } } },
                        "400": error_response("Bad query"), "401": unauthorized
                    }
                }
            },
            "/jobs/{id}": { "get": {
                "summary": "One job", "parameters": [id_parameter()],
                "responses": { "200": job_response("The job"), "400": bad_id.clone(), "401": unauthorized, "404": not_found }
            } },
            "/jobs/{id}/state": { "put": {
                "summary": "Move a job along a declared transition (recorded as an admin change)",
                "parameters": [id_parameter()],
                "requestBody": json_body("SetState"),
                "responses": {
                    "200": job_response("The moved job"), "400": bad, "401": unauthorized, "404": not_found,
                    "409": error_response("Not a declared transition (`allowed` lists the targets), a rejected guard, or a running job"),
                    "413": error_response("Body over the size limit"), "415": not_json
                }
            } },
            "/jobs/{id}/run": { "post": {
                "summary": "Run a pending job now", "parameters": [id_parameter()],
                "responses": { "200": job_response("The job afterwards"), "400": bad_id.clone(), "401": unauthorized, "404": not_found,
                    "503": error_response("The runtime stopped before the step ended") }
            } },
            "/jobs/{id}/cancel": { "post": {
                "summary": "Cancel a job", "parameters": [id_parameter()],
                "responses": { "200": job_response("The job, with `cancel`: cancelled, requested or already_finished"), "400": bad_id.clone(), "401": unauthorized, "404": not_found }
            } },
            "/jobs/{id}/history": { "get": {
                "summary": "A job's history, oldest first", "parameters": [id_parameter()],
                "responses": {
                    "200": { "description": "The history, and the path it took", "content": { "application/json": { "schema": { "type": "object", "properties": {
                        "id": { "type": "string" },
                        "path": { "type": "object", "properties": {
                            "visited": { "type": "array", "items": { "type": "string" }, "description": "States reached, in the order first reached" },
                            "edges": { "type": "array", "items": { "type": "array", "items": { "type": "string" }, "minItems": 2, "maxItems": 2 },
                                "description": "Transitions taken as [from, to], each once, in the order first taken" } } },
                        "history": { "type": "array", "items": { "$ref": "#/components/schemas/HistoryEntry" } } } } } } },
                    "400": bad_id, "401": unauthorized, "404": not_found
                }
            } },
            "/events": { "get": {
                "summary": "Server-sent events: `changed` with `{\"jobs\": [ids], \"more\": bool}` whenever jobs change; ends when the runtime shuts down",
                "responses": { "200": { "description": "An event stream", "content": { "text/event-stream": { "schema": { "type": "string" } } } }, "401": unauthorized.clone() }
            } },
            "/ui": { "get": {
                "summary": "The execution-graph visualizer (a WebAssembly app); it asks for the token and sends it with every call", "security": [],
                "responses": { "200": { "description": "The page", "content": { "text/html": { "schema": { "type": "string" } } } } }
            } },
            "/ui/": { "get": {
                "summary": "Redirects to /ui", "security": [],
                "responses": { "308": { "description": "To `../ui`" } }
            } },
            "/ui/{file}": { "get": {
                "summary": "The visualizer's assets", "security": [],
                "parameters": [{ "name": "file", "in": "path", "required": true, "schema": { "type": "string", "enum": ["runekernel_ui.js", "runekernel_ui_bg.wasm"] } }],
                "responses": { "200": { "description": "The asset" }, "404": error_response("No such asset") }
            } },
            "/machines": { "get": {
                "summary": "Every registered machine with live counts",
                "responses": { "200": { "description": "The machines", "content": { "application/json": { "schema": { "type": "object", "properties": {
                    "machines": { "type": "array", "items": { "$ref": "#/components/schemas/Machine" } } } } } } }, "401": unauthorized }
            } },
            "/machines/{name}": { "get": {
                "summary": "One machine's graph with live counts per state",
                "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "The machine", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Machine" } } } },
                    "401": unauthorized, "404": error_response("No such machine") }
            } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "description": "An RFC 9457 problem, with the stable `code` (and `allowed`) as extension members; `message` repeats `detail`",
                    "type": "object", "required": ["type", "title", "status", "detail", "code", "message"], "properties": {
                    "type": { "type": "string", "description": "urn:runekernel:problem:<code>" },
                    "title": { "type": "string" }, "status": { "type": "integer" }, "detail": { "type": "string" },
                    "code": { "type": "string" }, "message": { "type": "string" },
                    "allowed": { "type": "array", "items": { "type": "string" } } } },
                "Status": { "type": "string", "enum": ["pending", "running", "completed", "failed", "cancelled"] },
                "State": { "description": "A machine state as the enum's serde JSON, externally tagged: `{\"Created\": {\"sku\": \"a\", \"qty\": 1}}`, or `\"Cancelled\"` for a state without data",
                    "oneOf": [{ "type": "string" }, { "type": "object", "minProperties": 1, "maxProperties": 1 }] },
                "Submit": { "type": "object", "required": ["machine", "state"], "additionalProperties": false, "properties": {
                    "machine": { "type": "string" }, "state": { "$ref": "#/components/schemas/State" },
                    "options": { "type": "object", "additionalProperties": false, "properties": {
                        "priority": { "type": "integer", "description": "Lower runs first" },
                        "delay_ms": { "type": "integer", "minimum": 0 },
                        "max_attempts": { "type": "integer", "minimum": 1 },
                        "timeout_ms": { "type": "integer", "minimum": 0 },
                        "idempotency_key": { "type": "string" } } } } },
                "SetState": { "type": "object", "required": ["state"], "additionalProperties": false, "properties": {
                    "state": { "$ref": "#/components/schemas/State" } } },
                "Job": { "type": "object", "properties": {
                    "id": { "type": "string" }, "machine": { "type": "string" }, "state": { "$ref": "#/components/schemas/State" },
                    "state_name": { "type": "string" }, "status": { "$ref": "#/components/schemas/Status" },
                    "attempts": { "type": "integer" }, "max_attempts": { "type": "integer" }, "priority": { "type": "integer" },
                    "run_at_ms": { "type": "integer" }, "created_at_ms": { "type": "integer" }, "updated_at_ms": { "type": "integer" },
                    "version": { "type": "integer" }, "last_error": { "type": "string", "nullable": true },
                    "fingerprint": { "type": "string" }, "cancel": { "type": "string" } } },
                "JobPage": { "type": "object", "properties": {
                    "jobs": { "type": "array", "items": { "$ref": "#/components/schemas/Job" } },
                    "next": { "type": "string", "nullable": true },
                    "matching": { "type": "integer", "description": "How many jobs match the filter" } } },
                "HistoryEntry": { "type": "object", "properties": {
                    "seq": { "type": "integer" }, "from": { "type": "string", "nullable": true }, "to": { "type": "string" },
                    "status": { "$ref": "#/components/schemas/Status" }, "error": { "type": "string", "nullable": true },
                    "at": { "type": "integer" }, "attempt": { "type": "integer" }, "worker": { "type": "string", "nullable": true },
                    "payload": {} } },
                "Machine": { "type": "object", "properties": {
                    "name": { "type": "string" }, "version": { "type": "integer" }, "fingerprint": { "type": "string" },
                    "states": { "type": "array", "items": { "type": "object" } },
                    "transitions": { "type": "array", "items": { "type": "object" } },
                    "counts": { "type": "object", "description": "state -> status -> count" },
                    "totals": { "type": "object", "description": "status -> count" },
                    "mermaid": { "type": "string" }, "dot": { "type": "string" } } }
            }
        }
    })
}
