//! The built-in synthetic skeleton-action dataset.
