//! venus-rs core layer: contexts, shared-memory resources, rings and reply streams.
//!
//! - [`shm`]: the one audited module that touches shared memory: [`shm::SharedMemory`]
//!   (memfd / POSIX shm + our mapping), bounds-checked copies and atomics, [`shm::Region`]s
//!   for rings and reply windows. All `unsafe` for mapped memory lives in `shm/mapping.rs`.

// Only `shm::mapping` may use `unsafe`; the compiler enforces it.
#![deny(unsafe_code)]

pub mod shm;
