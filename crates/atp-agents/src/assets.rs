//! The lean-lsp MCP server every harness offers, and the user's skills and plugins.
//!
//! atp ships no prompt packs: skills and plugins are directories the user names
//! (`--skill DIR`, `--plugin DIR`), copied into the workdir where the CLI looks for them.

use std::path::{Path, PathBuf};

use serde_json::json;

/// The MCP server of Lean's language server, as every harness declares it.
#[derive(Debug, Clone, Copy)]
pub struct McpServer {
    pub name: &'static str,
    pub command: &'static str,
    pub args: &'static [&'static str],
    /// Per-tool timeout the harnesses that take one are given.
    pub tool_timeout_s: u64,
}

/// lean-lsp-mcp over stdio (pip `lean-lsp-mcp`, in the image).
pub const LEAN_LSP: McpServer = McpServer {
    name: "lean-lsp",
    command: "lean-lsp-mcp",
    args: &[],
    tool_timeout_s: 180,
};

impl McpServer {
    /// The `mcpServers` JSON of Claude Code's `.mcp.json`.
    pub fn claude_json(&self) -> serde_json::Value {
        json!({
            "mcpServers": {
                self.name: {
                    "type": "stdio",
                    "command": self.command,
                    "args": self.args,
                    "env": {}
                }
            }
        })
    }
}

impl McpServer {
    /// Codex's `-c` config overrides (`mcp_servers.<name>.…`), one per item.
    pub fn codex_overrides(&self) -> Vec<String> {
        let args: Vec<String> = self.args.iter().map(|a| format!("{a:?}")).collect();
        vec![
            format!("mcp_servers.{}.command={:?}", self.name, self.command),
            format!("mcp_servers.{}.args=[{}]", self.name, args.join(", ")),
            format!(
                "mcp_servers.{}.tool_timeout_sec={}",
                self.name, self.tool_timeout_s
            ),
        ]
    }

    /// The `mcp` entry of OpenCode's `opencode.json`.
    pub fn opencode_json(&self) -> serde_json::Value {
        let mut command = vec![self.command.to_string()];
        command.extend(self.args.iter().map(|a| a.to_string()));
        json!({
            self.name: {
                "type": "local",
                "command": command,
                "enabled": true,
                "timeout": self.tool_timeout_s * 1000
            }
        })
    }

    /// The `[[mcp_servers]]` table of Mistral Vibe's `config.toml`.
    pub fn vibe_toml(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| format!("{a:?}")).collect();
        format!(
            "[[mcp_servers]]\nname = {:?}\ntransport = \"stdio\"\ncommand = {:?}\nargs = [{}]\ntool_timeout_sec = {}\n",
            self.name,
            self.command,
            args.join(", "),
            self.tool_timeout_s
        )
    }

    /// Kimi Code's `mcp.json`.
    pub fn kimi_json(&self) -> serde_json::Value {
        json!({
            "mcpServers": {
                self.name: {
                    "command": self.command,
                    "args": self.args,
                    "startupTimeoutMs": self.tool_timeout_s * 1000,
                    "toolTimeoutMs": self.tool_timeout_s * 1000
                }
            }
        })
    }
}

/// Skills and plugins chosen by the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assets {
    pub skills: Vec<PathBuf>,
    pub plugins: Vec<PathBuf>,
}

/// A bad skill or plugin directory.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("{what} {path}: not a directory — pass a directory holding the {what} (e.g. with a SKILL.md)")]
    NotADirectory { what: &'static str, path: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("two {what}s are named `{name}` — rename one directory")]
    Duplicate { what: &'static str, name: String },
}

impl Assets {
    /// Check every directory exists (before anything is created).
    pub fn validate(&self) -> Result<(), AssetError> {
        for (what, dirs) in [("skill", &self.skills), ("plugin", &self.plugins)] {
            let mut names = std::collections::BTreeSet::new();
            for d in dirs {
                if !d.is_dir() {
                    return Err(AssetError::NotADirectory {
                        what,
                        path: d.display().to_string(),
                    });
                }
                let name = dir_name(d);
                if !names.insert(name.clone()) {
                    return Err(AssetError::Duplicate { what, name });
                }
            }
        }
        Ok(())
    }

    /// The skill names, in order.
    pub fn skill_names(&self) -> Vec<String> {
        self.skills.iter().map(|p| dir_name(p)).collect()
    }

    /// The plugin names, in order.
    pub fn plugin_names(&self) -> Vec<String> {
        self.plugins.iter().map(|p| dir_name(p)).collect()
    }

    /// Copy skills into `wd/skills_dir/<name>/` and plugins into `wd/plugins_dir/<name>/`
    /// (without their `tests/` folders).
    pub fn stage(
        &self,
        wd: &Path,
        skills_dir: Option<&str>,
        plugins_dir: Option<&str>,
    ) -> Result<(), AssetError> {
        for (what, dirs, dest) in [
            ("skill", &self.skills, skills_dir),
            ("plugin", &self.plugins, plugins_dir),
        ] {
            let Some(dest) = dest else { continue };
            for d in dirs {
                let to = wd.join(dest).join(dir_name(d));
                copy_dir(d, &to).map_err(|source| AssetError::Io {
                    what,
                    path: d.display().to_string(),
                    source,
                })?;
            }
        }
        Ok(())
    }
}

fn dir_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "asset".into())
}

/// Copy a directory tree (regular files and directories; links are not followed; `tests/`
/// folders skipped).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    copy_dir(from, to)
}

/// Copy a directory tree (regular files and directories; links are not followed).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "tests" {
            continue;
        }
        let ft = entry.file_type()?;
        let dest = to.join(&name);
        if ft.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skills_are_copied_without_tests_and_bad_dirs_are_named() {
        let d = tempfile::tempdir().expect("tmp");
        let skill = d.path().join("lean-proof");
        std::fs::create_dir_all(skill.join("tests")).expect("mk");
        std::fs::write(skill.join("SKILL.md"), "# skill").expect("w");
        std::fs::write(skill.join("tests/t.py"), "x").expect("w");
        let a = Assets {
            skills: vec![skill.clone()],
            plugins: vec![],
        };
        a.validate().expect("valid");
        let wd = d.path().join("wd");
        a.stage(&wd, Some(".claude/skills"), Some(".plugins"))
            .expect("staged");
        assert!(wd.join(".claude/skills/lean-proof/SKILL.md").is_file());
        assert!(!wd.join(".claude/skills/lean-proof/tests").exists());
        let bad = Assets {
            skills: vec![d.path().join("nope")],
            plugins: vec![],
        };
        let e = bad.validate().expect_err("missing");
        assert!(e.to_string().starts_with("skill "), "{e}");
    }
}
