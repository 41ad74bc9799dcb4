//! atp-verify (in progress).
