//! atp-image (in progress).
