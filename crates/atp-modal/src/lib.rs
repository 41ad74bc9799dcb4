//! atp-modal (in progress).
