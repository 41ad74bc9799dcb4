//! [`Usage`] (tokens, turns, stop reason) and [`Cost`] (USD and where it came from).

use serde::{Deserialize, Serialize};

use crate::prices::PriceTable;

/// What a prover consumed.
///
/// Invariant: `input_tokens` counts every input token, cached ones included; `cached_input_tokens`
/// is the part of it read from a prompt cache (priced at the cached rate).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    /// Agent turns (model round trips), when the prover reports them.
    pub turns: Option<u64>,
    /// Tool calls the agent made.
    pub tool_calls: Option<u64>,
    /// Why the generation stopped (`end_turn`, `max_turns`, `timeout`, …).
    pub stop_reason: Option<String>,
}

impl Usage {
    /// Add `other`'s counts (stop reason: the later one wins).
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.output_tokens += other.output_tokens;
        self.turns = sum_opt(self.turns, other.turns);
        self.tool_calls = sum_opt(self.tool_calls, other.tool_calls);
        if other.stop_reason.is_some() {
            self.stop_reason = other.stop_reason.clone();
        }
    }
}

fn sum_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

/// Where a cost figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostSource {
    /// The prover (its CLI or API) reported it.
    Reported,
    /// Computed from the tokens and atp's price table.
    Priced,
    /// Neither: the model is not in the price table and nothing was reported.
    Unpriced,
    /// The prover costs nothing per run (a local tactic search).
    Free,
}

/// A cost in USD, with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub usd: Option<f64>,
    pub source: CostSource,
    /// Why the figure is missing or how it was derived (e.g. "unpriced model gpt-x").
    pub note: Option<String>,
}

impl Cost {
    /// The reported cost, else the table's price for `model`, else `usd: None` with the reason.
    pub fn resolve(
        reported: Option<f64>,
        model: Option<&str>,
        usage: &Usage,
        prices: &PriceTable,
    ) -> Cost {
        if let Some(usd) = reported {
            return Cost {
                usd: Some(usd),
                source: CostSource::Reported,
                note: None,
            };
        }
        match model {
            Some(m) => match prices.cost(m, usage) {
                Some(usd) => Cost {
                    usd: Some(usd),
                    source: CostSource::Priced,
                    note: Some(format!("priced from atp's table for {m}")),
                },
                None => Cost {
                    usd: None,
                    source: CostSource::Unpriced,
                    note: Some(format!(
                        "unpriced model {m}: not in the price table — pass --prices FILE with its rates"
                    )),
                },
            },
            None => Cost {
                usd: None,
                source: CostSource::Unpriced,
                note: Some("no model and no reported cost".into()),
            },
        }
    }

    /// A prover that costs nothing.
    pub fn free() -> Cost {
        Cost {
            usd: Some(0.0),
            source: CostSource::Free,
            note: None,
        }
    }
}
