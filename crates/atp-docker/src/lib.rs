//! Docker backend (in progress).
