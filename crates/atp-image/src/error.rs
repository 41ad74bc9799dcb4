//! Errors of loading, validating and rendering an image spec.

use std::path::PathBuf;

/// Everything that can be wrong with an image spec. Each message is one line: what, where, remedy.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A file of the spec or its skeleton cannot be read.
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        /// Kept in the message, not as a `source`, so a chain print shows it once.
        error: std::io::Error,
    },
    /// The spec file is not valid TOML or has an unknown or misspelt key.
    #[error("invalid image spec {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// `base` is empty.
    #[error(
        "image spec {origin}: `base` is empty; set it to a registry image such as \"ubuntu:24.04\""
    )]
    EmptyBase { origin: String },
    /// A required skeleton file is absent.
    #[error("Lean skeleton {dir} has no `{file}`; add it (the pins are read from it)")]
    MissingSkeletonFile { dir: String, file: String },
    /// A skeleton file name cannot be placed in the image as-is.
    #[error("Lean skeleton {dir}: file name {file:?} is not a plain top-level name; rename it")]
    BadSkeletonFile { dir: String, file: String },
    /// A skeleton pin file does not hold a usable pin.
    #[error("Lean skeleton {dir}: {message}")]
    BadPin { dir: String, message: String },
    /// A pin stated or used by the spec differs from the skeleton's.
    #[error(
        "image spec {origin}: {location} uses {what} {found:?} but the skeleton pins {expected:?}; \
         the skeleton (images/lean/) is the single source of the pins, so drop or fix the value"
    )]
    PinMismatch {
        origin: String,
        location: String,
        what: &'static str,
        found: String,
        expected: String,
    },
    /// A step would leave an image in which no command can run, or is not supported.
    #[error("image spec {origin}: step {step} ({kind}): {message}")]
    BadStep {
        origin: String,
        /// 1-based index into the spec's steps.
        step: usize,
        kind: &'static str,
        message: String,
    },
    /// The spec never copies the Lean skeleton, so the pin labels would be false.
    #[error(
        "image spec {origin}: no `copy_skeleton` step; add `[[step]] copy_skeleton = \"/workspace\"` \
         (the image's pin labels describe the skeleton it holds)"
    )]
    NoSkeletonCopy { origin: String },
    /// A user label uses a reserved key or cannot be written in a Dockerfile.
    #[error("image spec {origin}: label {key:?}: {message}")]
    BadLabel {
        origin: String,
        key: String,
        message: String,
    },
    /// A lock file cannot be used as it is.
    #[error("image lock {path}: {message}; regenerate it with `atp image lock`")]
    BadLock { path: String, message: String },
    /// The lock was made from another version of the spec.
    #[error(
        "image lock {lock} is stale: made from spec hash {locked}…, but {spec} now hashes to \
         {actual}…; run `atp image lock --spec {spec}` to update it"
    )]
    StaleLock {
        lock: String,
        spec: String,
        locked: String,
        actual: String,
    },
    /// `--locked` was asked for but the spec has no lock.
    #[error(
        "image spec {spec} has no lock (expected {lock}); run `atp image lock --spec {spec}` to \
         create it, or drop --locked"
    )]
    MissingLock { spec: String, lock: String },
}

/// Result alias of this crate.
pub type Result<T, E = SpecError> = std::result::Result<T, E>;
