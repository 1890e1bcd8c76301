//! The derive's compile-time contract: what must not compile (with the exact
//! error, in `fail/*.stderr`) and what must compile and run (`pass/`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/*.rs");
    t.pass("tests/pass/*.rs");
}
