//! Panic and error containment for the exported functions: every body runs under
//! `catch_unwind`; an error or a panic is logged and becomes the function's error value.

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use tracing::{debug, error};

use crate::state::AbiError;

/// Runs `f`; `Ok(v)` -> `v`; an error (or a panic) is logged and gives `on_err`.
pub fn run<T>(name: &'static str, on_err: T, f: impl FnOnce() -> Result<T, AbiError>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            debug!(call = name, "failed: {e}");
            on_err
        }
        Err(_) => {
            error!(call = name, "panic caught at the C boundary");
            on_err
        }
    }
}

/// [`run`] for functions returning 0 on success and a negative errno on failure.
pub fn status(name: &'static str, f: impl FnOnce() -> Result<(), AbiError>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            debug!(call = name, "failed: {e}");
            -e.errno()
        }
        Err(_) => {
            error!(call = name, "panic caught at the C boundary");
            -AbiError::Panic(name).errno()
        }
    }
}

/// [`run`] for functions without a return value.
pub fn void(name: &'static str, f: impl FnOnce() -> Result<(), AbiError>) {
    run(name, (), f)
}
