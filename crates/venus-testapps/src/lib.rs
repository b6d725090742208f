//! End-to-end test support for venus-server: which tools a test needs ([`tools`]), the
//! server process harness ([`server`]), a raw vtest client ([`vtest`]) and a raw Venus client
//! on top of it ([`venus`]), and the ash toolkit of the application programs ([`gpu`]). The test programs live in `src/bin/` (a real Mesa client written
//! with ash, and a raw client for the wait tests); the tests in `tests/`.

pub mod gpu;
pub mod server;
pub mod tools;
pub mod venus;
pub mod vtest;
