//! atp's sandbox image: ONE declarative spec, rendered for Docker and for Modal, carrying its
//! Lean pins.
//!
//! - [`ImageSpec`] is loaded from TOML (`images/open-atp.toml` is the default spec) or built in
//!   code; [`ImageSpec::validate`] rejects specs that cannot yield a usable image.
//! - [`ImageSpec::to_dockerfile`] and [`ImageSpec::to_modal_layers`] render the same steps.
//! - The pins come only from the Lean skeleton (`images/lean/lean-toolchain` and the `mathlib`
//!   `rev` in `images/lean/lakefile.toml`); images carry them as `atp.*` labels and `ATP_*`
//!   environment variables, read back with [`ImagePins`].
//! - The tools the spec installs (`npm`, `pipx`, `elan` steps) are fixed by an [`ImageLock`]
//!   beside the spec (`images/open-atp.lock`); a spec with its lock attached renders exactly the
//!   locked versions and labels the image `atp.lock-hash` / `atp.tools`.
//!
//! Pure: no engine, no network.

mod error;
mod lock;
mod pins;
mod render;
mod spec;
mod tools;

pub use error::{Result, SpecError};
pub use lock::{
    lock_path_for, ImageLock, LockMode, LockSource, LockStatus, LockedBase, LockedLean, LockedTool,
    ToolVersion, LOCK_EXTENSION, LOCK_FORMAT,
};
pub use pins::{
    mathlib_rev_of_lakefile, pin_env_from_labels, pin_labels_from_env, ImagePins, LeanPins,
    PinSource, Skeleton, ENV_LEAN_TOOLCHAIN, ENV_LOCK_HASH, ENV_MATHLIB_REV, ENV_SPEC_HASH,
    ENV_TOOLS, LABEL_LEAN_TOOLCHAIN, LABEL_LOCK_HASH, LABEL_MATHLIB_REV, LABEL_SPEC_HASH,
    LABEL_TOOLS, LAKEFILE, PIN_ENV_LABELS, TOOLCHAIN_FILE,
};
pub use render::ModalLayer;
pub use spec::{
    Commands, CopyDir, ImageSpec, PinAssertions, Step, DEFAULT_SKELETON_DIR, DEFAULT_SPEC_FILE,
    DEFAULT_TAG,
};
pub use tools::{elan_release_url, Requirement, ToolKind, Wanted};

/// The default spec's path relative to the workspace root: `images/open-atp.toml`.
pub fn default_spec_path() -> std::path::PathBuf {
    std::path::Path::new("images").join(DEFAULT_SPEC_FILE)
}
