//! venus-rs transport layer: the vtest protocol server (in progress).
