use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The id of one atp run; every sandbox the run creates carries it as the `atp.run-id` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A fresh random id.
    pub fn new() -> Self {
        RunId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for container names.
    pub fn short(&self) -> String {
        self.0.chars().filter(|c| *c != '-').take(12).collect()
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RunId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(RunId(s.to_string()))
        } else {
            Err(format!(
                "invalid run id {s:?}: use 1-64 letters, digits or '-'"
            ))
        }
    }
}
