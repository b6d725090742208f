//! End-to-end test support for venus-server: which tools a test needs ([`tools`]), the
//! server process harness ([`server`]), a raw vtest client ([`vtest`]) and a raw Venus client
//! on top of it ([`venus`]), the ash toolkit of the application programs ([`gpu`]), and
//! programs run inside the Debian sid client root ([`sid`]), the validation layer's
//! report read ([`validation`]), and the leak soak ([`soak`], `venus-soak`). The test programs live in
//! `src/bin/` (Mesa clients written with ash: lifetimes, compute, render, sync, coherence; a
//! raw client for the wait tests; the native-vs-Venus benchmark), their shaders in
//! `shaders/`, the tests in `tests/`.

pub mod gpu;
pub mod server;
pub mod sid;
pub mod soak;
pub mod tools;
pub mod validation;
pub mod venus;
pub mod vtest;
