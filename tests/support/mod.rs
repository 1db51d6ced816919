//! Shared helpers for integration tests. Each test binary includes this with `mod support;`.

pub mod kube;
