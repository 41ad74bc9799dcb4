//! The price table: USD per million tokens by model, from `prices.toml` (compiled in) and an
//! optional user file that replaces entries.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::usage::Usage;

/// The table compiled into atp (the repository's `prices.toml`).
const BUILTIN: &str = include_str!("../../../prices.toml");

/// Rates of one model, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input: f64,
    /// Rate of input tokens read from a prompt cache; `None`: charged at `input`.
    pub cached_input: Option<f64>,
    pub output: f64,
}

impl ModelPrice {
    /// The cost of `usage` at these rates.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let fresh = usage.input_tokens - cached;
        (fresh as f64 * self.input
            + cached as f64 * self.cached_input.unwrap_or(self.input)
            + usage.output_tokens as f64 * self.output)
            / 1e6
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    models: BTreeMap<String, ModelPrice>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

/// A bad price file.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error(
        "{path}: cannot read the price table: {source} — pass an existing TOML file to --prices"
    )]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not a price table: {message} — see prices.toml in atp's repository for the format"
    )]
    Parse { path: String, message: String },
    #[error("{path}: alias `{alias}` points at `{target}`, which has no rates — add [models.\"{target}\"]")]
    DanglingAlias {
        path: String,
        alias: String,
        target: String,
    },
}

/// Model rates by name, with aliases.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
    aliases: BTreeMap<String, String>,
}

impl PriceTable {
    /// The table compiled into atp.
    pub fn builtin() -> PriceTable {
        match Self::parse(BUILTIN, "prices.toml (built in)") {
            Ok(t) => t,
            // Checked by this module's tests.
            Err(e) => unreachable!("the built-in price table is invalid: {e}"),
        }
    }

    /// Parse a table in `prices.toml`'s format; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<PriceTable, PriceError> {
        let f: PriceFile = toml::from_str(text).map_err(|e| PriceError::Parse {
            path: origin.into(),
            message: crate::one_line(&e.to_string()),
        })?;
        let t = PriceTable {
            models: f.models,
            aliases: f.aliases,
        };
        for (alias, target) in &t.aliases {
            if !t.models.contains_key(target) {
                return Err(PriceError::DanglingAlias {
                    path: origin.into(),
                    alias: alias.clone(),
                    target: target.clone(),
                });
            }
        }
        Ok(t)
    }

    /// The built-in table with the entries of `path` added or replacing.
    pub fn builtin_with(path: &Path) -> Result<PriceTable, PriceError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PriceError::Read {
            path: origin.clone(),
            source,
        })?;
        let user = Self::parse(&text, &origin)?;
        let mut t = Self::builtin();
        t.models.extend(user.models);
        t.aliases.extend(user.aliases);
        Ok(t)
    }

    /// The rates of `model`: by exact name, alias, without a `provider/` (or LangChain's
    /// `provider:`) prefix, or without a trailing date (`-20261001`, `@20261001`).
    pub fn get(&self, model: &str) -> Option<ModelPrice> {
        let mut candidates = vec![model.to_string()];
        if let Some((_, rest)) = model.split_once(['/', ':']) {
            candidates.push(rest.to_string());
        }
        for c in candidates.clone() {
            if let Some(stripped) = strip_date(&c) {
                candidates.push(stripped);
            }
        }
        candidates.iter().find_map(|c| {
            self.models
                .get(c)
                .or_else(|| self.aliases.get(c).and_then(|t| self.models.get(t)))
                .copied()
        })
    }

    /// The cost of `usage` on `model`; `None` when the model has no rates.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.get(model).map(|p| p.cost(usage))
    }

    /// Model names with rates, sorted.
    pub fn models(&self) -> impl Iterator<Item = (&str, &ModelPrice)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v))
    }
}

fn strip_date(name: &str) -> Option<String> {
    let (head, tail) = name.rsplit_once(['-', '@'])?;
    (tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_digit())).then(|| head.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, cached: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            output_tokens: output,
            ..Default::default()
        }
    }

    #[test]
    fn builtin_table_parses_and_prices_the_reference_entries() {
        let t = PriceTable::builtin();
        // gpt-5.4 at 1M input + 1M output: 2.50 + 15.00.
        let c = t.cost("gpt-5.4", &usage(1_000_000, 0, 1_000_000));
        assert_eq!(c, Some(17.5));
        assert_eq!(
            t.cost("claude-opus-4-8", &usage(1_000_000, 0, 0)),
            Some(5.0)
        );
    }

    #[test]
    fn cached_tokens_are_charged_at_the_cached_rate() {
        let t = PriceTable::builtin();
        // 1M input of which 800k cached: 200k * 5 + 800k * 0.5 = 1.0 + 0.4.
        let c = t
            .cost("claude-opus-4-8", &usage(1_000_000, 800_000, 0))
            .expect("priced");
        assert!((c - 1.4).abs() < 1e-9, "{c}");
        // Without a cached rate, cached tokens cost the input rate.
        let c = t
            .cost("deepseek-v4-pro", &usage(1_000_000, 500_000, 0))
            .expect("priced");
        assert!((c - 0.435).abs() < 1e-9, "{c}");
    }

    #[test]
    fn unknown_models_are_not_priced_and_names_are_normalised() {
        let t = PriceTable::builtin();
        assert_eq!(t.cost("no-such-model", &usage(1, 1, 1)), None);
        assert!(t.get("claude-opus-4-8-20261001").is_some());
        assert!(t.get("anthropic/claude-opus-4-8").is_some());
        assert!(t.get("anthropic:claude-opus-4-8").is_some());
        assert!(t.get("openrouter/gpt-5.4").is_some());
    }

    #[test]
    fn a_user_file_overrides_and_bad_files_say_where() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("p.toml");
        std::fs::write(
            &p,
            "[models.\"my-vllm\"]\ninput = 1.0\noutput = 2.0\n[models.\"gpt-5.4\"]\ninput = 0.0\noutput = 0.0\n",
        )
        .expect("w");
        let t = PriceTable::builtin_with(&p).expect("ok");
        assert_eq!(t.cost("my-vllm", &usage(1_000_000, 0, 0)), Some(1.0));
        assert_eq!(t.cost("gpt-5.4", &usage(1_000_000, 0, 0)), Some(0.0));
        std::fs::write(&p, "[models.x]\ninput = \"cheap\"\n").expect("w");
        let e = PriceTable::builtin_with(&p).expect_err("bad");
        assert!(e.to_string().starts_with(&p.display().to_string()), "{e}");
        std::fs::write(&p, "[aliases]\na = \"missing\"\n").expect("w");
        let e = PriceTable::builtin_with(&p).expect_err("dangling");
        assert!(e.to_string().contains("`missing`"), "{e}");
    }
}
