//! Compile-fail and compile-pass cases of `#[derive(StateMachine)]`, run by
//! trybuild from `tests/ui.rs`: one behaviour per file under `tests/fail/`
//! (with its exact `.stderr`) and `tests/pass/`.
