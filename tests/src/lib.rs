//! Shared fixtures of RuneKernel's integration tests: the machines the tests
//! run, and the storage backends they run on.

pub mod backends;
pub mod machines;
