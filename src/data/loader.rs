//! Batch loading.
