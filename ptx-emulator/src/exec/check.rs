//! The checks of a launch: memory accesses, races, initialisation.

use std::sync::atomic::AtomicU64;

/// The race state of one 4-byte word of device memory during checked launches.
#[derive(Default)]
pub struct WordState {
    pub writer: AtomicU64,
    pub reader: AtomicU64,
}
