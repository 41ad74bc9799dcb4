//! `report.html`: one self-contained page (no network: a Content-Security-Policy of
//! `default-src 'none'`, inline CSS, inline SVG charts, a few lines of inline script) with the
//! provenance, the per-prover table, three charts (solved per prover, cost vs solved, time
//! distribution), the task × prover grid, and every cell's transcript as a conversation with the
//! final verdict and the verifier's reasons.
//!
//! Invariant: every text that comes from a run (transcripts, file names, messages, task names)
//! is HTML-escaped; the provers are adversaries and their output is never markup.

use std::fmt::Write as _;

use atp_prover::EntryKind;

use crate::aggregate::{grid, CellRecord, Outcome};
use crate::report::{grid_text, pct, secs, usd, ReportData};
use crate::store::{CellId, Store};

/// Raw output lines shown for a cell without a transcript.
const RAW_TAIL_LINES: usize = 200;
const RAW_TAIL_BYTES: usize = 64 * 1024;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The element id of a cell's section.
pub fn cell_anchor(id: &CellId) -> String {
    let rel = id.rel_dir().to_string_lossy().into_owned();
    format!("c-{}", &crate::util::sha256_hex(rel.as_bytes())[..16])
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Solved => "o-solved",
        Outcome::HoleUnchecked => "o-hole",
        Outcome::HoleWrong => "o-wrong",
        Outcome::Unverified => "o-unverified",
        Outcome::Timeout => "o-timeout",
        Outcome::Error => "o-error",
        Outcome::Cancelled | Outcome::NotRun => "o-none",
    }
}

const STYLE: &str = r#"
:root { --fg:#1d2430; --muted:#5b6577; --line:#d9dee7; --bg:#fff; --solved:#2e8b57; --hole:#d4a017; --wrong:#c0392b; --unverified:#e67e22; --timeout:#8e44ad; --error:#7f8c8d; --none:#bdc3c7; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
ul.prov { margin: 0; padding-left: 18px; color: var(--muted); font-size: 12.5px; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f6fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; } figure { margin: 0; border: 1px solid var(--line); padding: 8px; border-radius: 6px; } figcaption { color: var(--muted); font-size: 12px; text-align: center; }
svg text { font: 11px system-ui, sans-serif; fill: var(--fg); } svg .axis { stroke: var(--muted); stroke-width: 1; } svg .grid { stroke: var(--line); stroke-width: 1; }
table.grid td a { color: inherit; text-decoration: none; display: block; }
.o-solved { background: #e3f4ea; } .o-hole { background: #fbf1d3; } .o-wrong { background: #f8dcd8; } .o-unverified { background: #fde9d9; } .o-timeout { background: #eee0f3; } .o-error { background: #eceff1; } .o-none { background: #fafafa; color: var(--muted); }
details.cell { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; } details.cell > summary { cursor: pointer; padding: 6px 10px; font-weight: 600; }
.body { padding: 6px 12px 12px; } .verdict { margin: 6px 0 10px; }
.e { margin: 6px 0; border-left: 3px solid var(--line); padding: 2px 8px; } .who { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.e-assistant { border-color: #3b82f6; } .e-tool_call { border-color: #8b5cf6; } .e-tool_result { border-color: #10b981; } .e-error { border-color: var(--wrong); } .e-final { border-color: var(--fg); } .e-system, .e-user { border-color: var(--none); }
pre { white-space: pre-wrap; word-break: break-word; margin: 2px 0; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; max-height: 420px; overflow: auto; background: #f8f9fb; padding: 4px 6px; }
.muted { color: var(--muted); } input#grid-filter { margin: 0 0 8px; padding: 4px 6px; width: 260px; }
"#;

const SCRIPT: &str = r#"
(function () {
  'use strict';
  function openHash() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    if (!id) { return; }
    var el = document.getElementById(id);
    if (el && el.tagName === 'DETAILS') { el.open = true; el.scrollIntoView(); }
  }
  window.addEventListener('hashchange', openHash);
  openHash();
  var filter = document.getElementById('grid-filter');
  if (filter) {
    filter.addEventListener('input', function () {
      var q = filter.value.toLowerCase();
      var rows = document.querySelectorAll('#grid tbody tr');
      for (var i = 0; i < rows.length; i++) {
        var t = (rows[i].getAttribute('data-task') || '').toLowerCase();
        rows[i].style.display = t.indexOf(q) >= 0 ? '' : 'none';
      }
    });
  }
  document.documentElement.setAttribute('data-ready', '1');
})();
"#;

/// Render report.html.
pub fn html(d: &ReportData, store: &Store) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let title = format!("atp benchmark: {}", d.info.dataset.name);
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let _ = writeln!(
        s,
        "<header><h1>{}</h1><ul class=\"prov\" id=\"provenance\">",
        esc(&title)
    );
    for l in d.info.header_lines() {
        let _ = writeln!(s, "<li>{}</li>", esc(&l));
    }
    let _ = writeln!(s, "</ul></header>");
    summary_table(&mut s, d);
    charts(&mut s, d);
    grid_section(&mut s, d);
    cells(&mut s, d, store);
    let _ = write!(s, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    s
}

fn summary_table(s: &mut String, d: &ReportData) {
    let n = d.plan.attempts;
    let _ = writeln!(s, "<section id=\"summary\"><h2>Per prover</h2>");
    let _ = writeln!(s, "<p class=\"muted\">Solved = verified by atp's verifier with every definition hole proved equal to the official answer; <em>hole unchecked</em> (a hole's answer not confirmed) and <em>hole wrong</em> (a hole proved different) do not count.</p>");
    let _ = write!(
        s,
        "<table><thead><tr><th>prover</th><th>solved / attempted</th><th>pass@1</th>"
    );
    if n > 1 {
        let _ = write!(s, "<th>pass@{n}</th>");
    }
    let _ = writeln!(s, "<th>hole unchecked</th><th>hole wrong</th><th>unverified</th><th>timeout</th><th>error</th><th>not run</th><th>total cost</th><th>median cost</th><th>tokens in (cached) / out</th><th>median time</th></tr></thead><tbody>");
    for p in &d.summaries {
        let o = |k: Outcome| p.outcomes.get(&k).copied().unwrap_or(0);
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td>",
            esc(&p.prover),
            p.tasks_solved,
            p.tasks_attempted,
            pct(p.pass_at_1)
        );
        if n > 1 {
            let _ = write!(s, "<td class=\"num\">{}</td>", pct(p.pass_at_n));
        }
        let _ = writeln!(
            s,
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}{}</td><td class=\"num\">{}</td><td class=\"num\">{} ({}) / {}</td><td class=\"num\">{}</td></tr>",
            o(Outcome::HoleUnchecked),
            o(Outcome::HoleWrong),
            o(Outcome::Unverified),
            o(Outcome::Timeout),
            o(Outcome::Error),
            o(Outcome::NotRun) + o(Outcome::Cancelled),
            usd(p.total_cost_usd),
            if p.unpriced_cells > 0 { format!(" (+{} unpriced)", p.unpriced_cells) } else { String::new() },
            p.median_cost_usd.map(usd).unwrap_or_else(|| "-".into()),
            p.input_tokens,
            p.cached_input_tokens,
            p.output_tokens,
            esc(&secs(p.median_time_s)),
        );
    }
    let _ = writeln!(s, "</tbody></table></section>");
}

/// A number for an axis label.
fn tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn charts(s: &mut String, d: &ReportData) {
    let _ = writeln!(
        s,
        "<section id=\"charts\"><h2>Charts</h2><div class=\"charts\">"
    );
    // 1. Solved per prover (horizontal bars, out of the tasks attempted).
    let w = 520.0;
    let row = 26.0;
    let left = 140.0;
    let h = 30.0 + row * d.summaries.len().max(1) as f64;
    let max = d
        .summaries
        .iter()
        .map(|p| p.tasks_attempted.max(p.tasks_solved))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let _ = writeln!(s, "<figure id=\"chart-solved\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"solved per prover\">");
    for (i, p) in d.summaries.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        let full = (w - left - 60.0) * p.tasks_attempted as f64 / max;
        let solved = (w - left - 60.0) * p.tasks_solved as f64 / max;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{y}\" width=\"{full:.1}\" height=\"18\" fill=\"#e5e8ee\"/><rect class=\"bar\" x=\"{left}\" y=\"{y}\" width=\"{solved:.1}\" height=\"18\" fill=\"#2e8b57\"><title>{}: {} of {} tasks solved</title></rect><text x=\"{:.1}\" y=\"{}\">{}/{}</text>",
            left - 6.0,
            y + 13.0,
            esc(&p.prover),
            esc(&p.prover),
            p.tasks_solved,
            p.tasks_attempted,
            left + full.max(solved) + 6.0,
            y + 13.0,
            p.tasks_solved,
            p.tasks_attempted
        );
    }
    let _ = writeln!(
        s,
        "</svg><figcaption>Tasks solved per prover (grey: attempted)</figcaption></figure>"
    );

    // 2. Cost vs solved (scatter).
    let (w, h) = (360.0, 260.0);
    let (l, b, t, r) = (50.0, 36.0, 12.0, 16.0);
    let max_cost = d
        .summaries
        .iter()
        .map(|p| p.total_cost_usd)
        .fold(0.0, f64::max);
    let xmax = if max_cost > 0.0 { max_cost * 1.1 } else { 1.0 };
    let ymax = d
        .summaries
        .iter()
        .map(|p| p.tasks_attempted.max(p.tasks_solved))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |v: f64| l + (w - l - r) * v / xmax;
    let y = |v: f64| h - b - (h - b - t) * v / ymax;
    let _ = writeln!(s, "<figure id=\"chart-cost\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"cost versus solved\">");
    let _ = writeln!(
        s,
        "<line class=\"axis\" x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/><line class=\"axis\" x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{}\"/>",
        h - b,
        w - r,
        h - b,
        h - b
    );
    for k in 0..=4 {
        let v = xmax * k as f64 / 4.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(v),
            h - b + 14.0,
            esc(&tick(v))
        );
        let v = ymax * k as f64 / 4.0;
        let _ = write!(s, "<line class=\"grid\" x1=\"{l}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", y(v), w - r, y(v), l - 4.0, y(v) + 4.0, esc(&tick(v)));
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">total cost (USD)</text><text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">tasks solved</text>",
        (l + w - r) / 2.0,
        h - 4.0,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0
    );
    for p in &d.summaries {
        let (px, py) = (x(p.total_cost_usd), y(p.tasks_solved as f64));
        let _ = writeln!(
            s,
            "<circle class=\"point\" cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"5\" fill=\"#3b82f6\"><title>{}: {} solved for {}</title></circle><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            esc(&p.prover),
            p.tasks_solved,
            usd(p.total_cost_usd),
            px + 7.0,
            py - 6.0,
            esc(&p.prover)
        );
    }
    let _ = writeln!(
        s,
        "</svg><figcaption>Cost vs tasks solved</figcaption></figure>"
    );

    // 3. Time distribution (a strip per prover, median marked).
    let w = 520.0;
    let left = 140.0;
    let h = 40.0 + row * d.summaries.len().max(1) as f64;
    let ended: Vec<&CellRecord> = d.records.iter().filter(|r| r.outcome.attempted()).collect();
    let tmax = ended.iter().map(|r| r.total_s).fold(0.0, f64::max).max(1.0) * 1.05;
    let tx = |v: f64| left + (w - left - 20.0) * v / tmax;
    let _ = writeln!(s, "<figure id=\"chart-time\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"time distribution\">");
    let base = h - 26.0;
    let _ = writeln!(
        s,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\"/>",
        w - 20.0
    );
    for k in 0..=4 {
        let v = tmax * k as f64 / 4.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            tx(v),
            base + 14.0,
            esc(&tick(v))
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">seconds per cell</text>",
        (left + w - 20.0) / 2.0,
        h - 2.0
    );
    for (i, p) in d.summaries.iter().enumerate() {
        let yy = 16.0 + row * i as f64;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            yy + 4.0,
            esc(&p.prover)
        );
        for r in ended.iter().filter(|r| r.prover == p.prover) {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{yy}\" r=\"3\" fill=\"{}\" fill-opacity=\"0.7\"><title>{} #{}: {:.1} s ({})</title></circle>",
                tx(r.total_s),
                if r.outcome == Outcome::Solved { "#2e8b57" } else { "#e67e22" },
                esc(&r.task),
                r.attempt,
                r.total_s,
                r.outcome
            );
        }
        if let Some(m) = p.median_time_s {
            let _ = write!(s, "<line x1=\"{:.1}\" y1=\"{}\" x2=\"{:.1}\" y2=\"{}\" stroke=\"#1d2430\" stroke-width=\"2\"><title>median {m:.1} s</title></line>", tx(m), yy - 8.0, tx(m), yy + 8.0);
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "</svg><figcaption>Time per cell (green: solved; bar: median)</figcaption></figure>"
    );
    let _ = writeln!(s, "</div></section>");
}

fn grid_section(s: &mut String, d: &ReportData) {
    let g = grid(&d.records);
    let _ = writeln!(s, "<section id=\"grid\"><h2>Task × prover</h2><input id=\"grid-filter\" type=\"search\" placeholder=\"filter tasks\" aria-label=\"filter tasks\">");
    let _ = write!(s, "<table class=\"grid\"><thead><tr><th>task</th>");
    for p in &d.plan.provers {
        let _ = write!(s, "<th>{}</th>", esc(p));
    }
    let _ = writeln!(s, "</tr></thead><tbody>");
    for t in &d.plan.tasks {
        let _ = write!(s, "<tr data-task=\"{}\"><td>{}</td>", esc(t), esc(t));
        for p in &d.plan.provers {
            let (c, e, best) =
                g.get(&(t.clone(), p.clone()))
                    .copied()
                    .unwrap_or((0, 0, Outcome::NotRun));
            let first = CellId {
                task: t.clone(),
                prover: p.clone(),
                attempt: 1,
            };
            let _ = write!(
                s,
                "<td class=\"{}\"><a href=\"#{}\">{}</a></td>",
                outcome_class(if c > 0 { Outcome::Solved } else { best }),
                cell_anchor(&first),
                esc(&grid_text(c, e, best, d.plan.attempts))
            );
        }
        let _ = writeln!(s, "</tr>");
    }
    let _ = writeln!(s, "</tbody></table></section>");
}

fn cells(s: &mut String, d: &ReportData, store: &Store) {
    let _ = writeln!(s, "<section id=\"cells\"><h2>Cells</h2>");
    for r in &d.records {
        let id = CellId {
            task: r.task.clone(),
            prover: r.prover.clone(),
            attempt: r.attempt,
        };
        let _ = writeln!(
            s,
            "<details class=\"cell {}\" id=\"{}\"><summary>{} · {} · #{} — {}</summary><div class=\"body\">",
            outcome_class(r.outcome),
            cell_anchor(&id),
            esc(&r.task),
            esc(&r.prover),
            r.attempt,
            r.outcome
        );
        let result = store.read(&id);
        verdict(s, r, result.as_ref());
        match store.transcript(&id) {
            Some(t) => {
                let _ = writeln!(s, "<div class=\"conv\">");
                for e in &t.entries {
                    let (class, who) = match e.kind {
                        EntryKind::System => ("e-system", "system".to_string()),
                        EntryKind::User => ("e-user", "user".to_string()),
                        EntryKind::Assistant => ("e-assistant", "assistant".to_string()),
                        EntryKind::ToolCall => (
                            "e-tool_call",
                            format!("tool call · {}", e.tool.as_deref().unwrap_or("?")),
                        ),
                        EntryKind::ToolResult if e.is_error => {
                            ("e-tool_result e-error", "tool result (error)".to_string())
                        }
                        EntryKind::ToolResult => ("e-tool_result", "tool result".to_string()),
                        EntryKind::Final => ("e-final", "final".to_string()),
                    };
                    let _ = writeln!(
                        s,
                        "<div class=\"e {class}\"><div class=\"who\">{}</div><pre>{}</pre></div>",
                        esc(&who),
                        esc(&e.text)
                    );
                }
                if t.dropped > 0 {
                    let _ = writeln!(
                        s,
                        "<p class=\"muted\">… {} more entries in logs/transcript.json</p>",
                        t.dropped
                    );
                }
                let _ = writeln!(s, "</div>");
            }
            None => match store.stdout_tail(&id, RAW_TAIL_LINES, RAW_TAIL_BYTES) {
                Some(raw) => {
                    let _ = writeln!(s, "<div class=\"conv\"><div class=\"e e-system\"><div class=\"who\">prover output (logs/stdout.txt, last {RAW_TAIL_LINES} lines)</div><pre>{}</pre></div></div>", esc(&raw));
                }
                None => {
                    let _ = writeln!(s, "<p class=\"muted\">no prover output</p>");
                }
            },
        }
        let _ = writeln!(s, "</div></details>");
    }
    let _ = writeln!(s, "</section>");
}

fn verdict(s: &mut String, r: &CellRecord, result: Option<&atp_prover::ProofResult>) {
    let _ = write!(
        s,
        "<div class=\"verdict\"><strong>verdict: {}</strong>",
        r.outcome
    );
    if let Some(st) = r.status {
        let _ = write!(s, " <span class=\"muted\">(status {st})</span>");
    }
    let _ = write!(
        s,
        " <span class=\"muted\">· {} · tokens {} in ({} cached) / {} out · {}</span>",
        r.cost_usd.map(usd).unwrap_or_else(|| "cost unknown".into()),
        r.input_tokens,
        r.cached_input_tokens,
        r.output_tokens,
        esc(&secs(Some(r.total_s)))
    );
    if let Some(reason) = &r.reason {
        let _ = write!(s, "<div>{}</div>", esc(reason));
    }
    if let Some(v) = result.and_then(|r| r.verification.as_ref()) {
        if !v.violations.is_empty() {
            let _ = write!(s, "<ul class=\"violations\">");
            for x in v.violations.iter().take(50) {
                let _ = write!(
                    s,
                    "<li><code>{}</code> {}{}: {}</li>",
                    esc(x.kind.as_str()),
                    esc(&x.location()),
                    x.decl
                        .as_deref()
                        .map(|d| format!(" [{}]", esc(d)))
                        .unwrap_or_default(),
                    esc(&x.message)
                );
            }
            if v.violations.len() > 50 {
                let _ = write!(
                    s,
                    "<li class=\"muted\">… {} more in result.json</li>",
                    v.violations.len() - 50
                );
            }
            let _ = write!(s, "</ul>");
        }
        if !v.definition_holes.is_empty() {
            let _ = write!(s, "<table class=\"holes\"><thead><tr><th>definition hole</th><th>candidate's body</th><th>official answer</th><th>check</th></tr></thead><tbody>");
            for h in &v.definition_holes {
                let _ = write!(
                    s,
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td>{}{}</td></tr>",
                    esc(&h.name),
                    esc(h.body.as_deref().unwrap_or("-")),
                    esc(h.answer.as_deref().unwrap_or("-")),
                    esc(h.check.as_str()),
                    h.note.as_deref().map(|n| format!(" — {}", esc(n))).unwrap_or_default()
                );
            }
            let _ = write!(s, "</tbody></table>");
        }
    }
    let _ = writeln!(s, "</div>");
}
