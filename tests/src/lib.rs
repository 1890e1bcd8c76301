//! Shared fixtures of RuneKernel's integration tests: the machines the tests
//! run and helpers to reach the test databases.

pub mod machines;
