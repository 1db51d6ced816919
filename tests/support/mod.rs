//! Shared helpers for integration tests. Each test binary includes this with `mod support;`.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

pub mod kube;
pub mod operator;
pub mod plan;
pub mod previews;
