//! Source-level checks: statements against the original task, and red flags.
//!
//! What is compared (decided here, documented in ARCHITECTURE.md):
//! - every `theorem`/`lemma` of the original must exist in the same file of the candidate under
//!   the same full name (namespace included), kind, visibility (`private`/`protected`) and
//!   normalised statement, in the same scope (namespace, `open`, `variable`, `universe`,
//!   `include`/`omit`/`export`, and `open … in` prefixes) — so namespace moves, renames, `private`
//!   and `open … in` shadowing are all refused;
//! - every `example` of the original must be matched, in order, by an example with the same
//!   statement and scope (the candidate may add examples in between);
//! - a named non-theorem declaration of the original (`def`, `structure`, `instance foo`, …)
//!   must be unchanged including its body — unless its body holds a `sorry`, in which case it is
//!   a proof obligation and only its statement is compared; anonymous commands (notations,
//!   anonymous instances, `attribute […]`, macros) must be present verbatim;
//! - the original's imports must all remain; `noncomputable` is ignored in comparisons.
//!
//! Red flags in the candidate fail by default (see [`VerifyPolicy`] for allowances):
//! `axiom`, `set_option debug.*`, `@[implemented_by]`, `@[extern]`/`@[export]`, `@[csimp]`,
//! `@[init]`/`initialize`, `unsafe`/`unsafeCast`…, `#exit`, metaprogramming (`run_cmd`,
//! `run_tac`, `elab`, `#eval`, `addDecl`, `modifyEnv`…), new `macro`/`syntax`/`notation`/
//! `macro_rules`, new instances, `native_decide`/`ofReduceBool`, sorry tokens, imports that are
//! neither project files nor trusted libraries, and new declarations whose last name component
//! matches a name used by a checked statement (shadowing).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::report::{Violation, ViolationKind};
use atp_lean::lexer::{is_sorry_token, TokenKind};
use atp_lean::source::{
    attribute_command_names, declared_command_keywords, parse, parse_with, Command, SourceFile,
};

/// The axioms a clean Mathlib proof may depend on.
pub const STANDARD_AXIOMS: &[&str] = &["propext", "Classical.choice", "Quot.sound"];

/// Axioms that `native_decide` / `decide +native` introduce.
pub const NATIVE_AXIOMS: &[&str] = &[
    "Lean.ofReduceBool",
    "Lean.ofReduceNat",
    "Lean.trustCompiler",
];

/// Import roots trusted without source in the project.
pub const TRUSTED_IMPORT_ROOTS: &[&str] = &[
    "Mathlib",
    "Batteries",
    "Std",
    "Init",
    "Lean",
    "Aesop",
    "Qq",
    "Plausible",
    "ProofWidgets",
    "ImportGraph",
    "LeanSearchClient",
];

/// What the verifier tolerates. The default refuses every red flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyPolicy {
    /// Accept `native_decide` and the axioms it adds (`Lean.ofReduceBool`, `Lean.trustCompiler`).
    pub allow_native_decide: bool,
    /// Extra axiom names accepted both as declarations and in the probe's output.
    pub allowed_axioms: BTreeSet<String>,
    /// Accept new instances.
    pub allow_new_instances: bool,
    /// Accept new `macro`/`syntax`/`notation`/`macro_rules`.
    pub allow_syntax_extensions: bool,
    /// Accept `#eval`, `run_cmd`, `elab`, … (code that runs during elaboration).
    pub allow_metaprogramming: bool,
    /// Extra trusted import roots.
    pub trusted_import_roots: Vec<String>,
}

impl VerifyPolicy {
    /// Whether the probe may report axiom `name` without refusing.
    pub fn axiom_allowed(&self, name: &str) -> bool {
        STANDARD_AXIOMS.contains(&name)
            || self.allowed_axioms.contains(name)
            || (self.allow_native_decide && NATIVE_AXIOMS.contains(&name))
    }

    fn allows(&self, kind: ViolationKind) -> bool {
        match kind {
            ViolationKind::NativeDecide => self.allow_native_decide,
            ViolationKind::NewInstance => self.allow_new_instances,
            ViolationKind::SyntaxExtension => self.allow_syntax_extensions,
            ViolationKind::Metaprogramming => self.allow_metaprogramming,
            _ => false,
        }
    }
}

/// Name prefix reserved for the verifier's own constants (renamed examples).
pub const RESERVED_PREFIX: &str = "_atp_";

/// Whether attribute `a` registers code that runs during elaboration.
fn is_meta_attribute(a: &str) -> bool {
    let a = a.strip_prefix("builtin_").unwrap_or(a);
    matches!(
        a,
        "macro"
            | "tactic"
            | "init"
            | "simproc"
            | "dsimproc"
            | "sevalproc"
            | "simprocs"
            | "norm_num"
            | "positivity"
            | "delab"
            | "app_delab"
            | "command_code_action"
            | "env_linter"
            | "run_builtin_parser_attribute_hooks"
    ) || a.ends_with("_elab")
        || a.ends_with("_parser")
        || a.ends_with("_elab_rules")
}

/// Module name of a project-relative path (`A/B.lean` → `A.B`).
pub fn module_name(rel: &str) -> String {
    rel.trim_end_matches(".lean").replace(['/', '\\'], ".")
}

const SYNTAX_KEYWORDS: &[&str] = &[
    "macro",
    "macro_rules",
    "syntax",
    "notation",
    "notation3",
    "infix",
    "infixl",
    "infixr",
    "prefix",
    "postfix",
    "declare_syntax_cat",
    "binder_predicate",
];
const META_IDENTS: &[&str] = &["run_cmd", "run_elab", "run_meta", "run_tac"];
const META_LAST: &[&str] = &[
    "addDecl",
    "addAndCompile",
    "modifyEnv",
    "setEnv",
    "addDeclCore",
    "addDeclWithoutChecking",
    "evalConstCheck",
];
const NATIVE_LAST: &[&str] = &[
    "native_decide",
    "ofReduceBool",
    "ofReduceNat",
    "reduceBool",
    "reduceNat",
    "trustCompiler",
];

/// Parse every file of a project (`rel path → source`) with the built-in command keywords.
pub fn parse_all(files: &BTreeMap<String, String>) -> BTreeMap<String, SourceFile> {
    files.iter().map(|(k, v)| (k.clone(), parse(v))).collect()
}

/// Parse candidate and original together: the command keywords either declares (`syntax`/
/// `macro`/`elab … : command`) start commands in both (a second pass with them).
pub fn parse_projects(
    candidate: &BTreeMap<String, String>,
    original: Option<&BTreeMap<String, String>>,
) -> (
    BTreeMap<String, SourceFile>,
    Option<BTreeMap<String, SourceFile>>,
) {
    let first_c = parse_all(candidate);
    let first_o = original.map(parse_all);
    let extra = declared_command_keywords(
        first_c
            .values()
            .chain(first_o.iter().flat_map(|o| o.values())),
    );
    if extra.is_empty() {
        return (first_c, first_o);
    }
    let again = |files: &BTreeMap<String, String>| -> BTreeMap<String, SourceFile> {
        files
            .iter()
            .map(|(k, v)| (k.clone(), parse_with(v, &extra)))
            .collect()
    };
    (again(candidate), original.map(again))
}

fn strip_noncomputable(text: &str) -> String {
    text.split(' ')
        .filter(|t| *t != "noncomputable")
        .collect::<Vec<_>>()
        .join(" ")
}

fn short(s: &str) -> String {
    let s: String = s.chars().take(90).collect();
    s
}

/// Red flags in the candidate's sources.
pub fn red_flags(
    candidate: &BTreeMap<String, SourceFile>,
    original: Option<&BTreeMap<String, SourceFile>>,
    policy: &VerifyPolicy,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let project_modules: BTreeSet<String> = candidate.keys().map(|k| module_name(k)).collect();
    let original_texts: BTreeSet<String> = original
        .into_iter()
        .flat_map(|o| o.values())
        .flat_map(|f| f.commands.iter().map(|c| strip_noncomputable(&c.text)))
        .collect();
    let original_has = |kw: &str| {
        original
            .into_iter()
            .flat_map(|o| o.values())
            .any(|f| f.commands.iter().any(|c| c.keyword == kw))
    };
    let mut declared_at: BTreeMap<String, String> = BTreeMap::new();
    let declared = declared_command_keywords(
        candidate
            .values()
            .chain(original.into_iter().flat_map(|o| o.values())),
    );
    for (rel, file) in candidate {
        let mut push = |kind: ViolationKind, line: usize, decl: Option<String>, msg: String| {
            if !policy.allows(kind) {
                out.push(Violation::source(kind, rel, Some(line), decl, msg));
            }
        };
        // a project file named like a module of a trusted library would stand in for it
        let module = module_name(rel);
        let root = module.split('.').next().unwrap_or("");
        if TRUSTED_IMPORT_ROOTS.contains(&root)
            || policy.trusted_import_roots.iter().any(|r| r == root)
        {
            push(
                ViolationKind::UnknownImport,
                1,
                None,
                format!(
                    "`{rel}` would be the module `{module}` of a trusted library; rename the file"
                ),
            );
        }
        // where atp's reading of the file may not be Lean's: refuse rather than guess
        for d in &file.diagnostics {
            push(
                ViolationKind::SourceUnclear,
                d.line,
                None,
                format!("{} (at {}:{})", d.message, d.line, d.col),
            );
        }
        for c in &file.commands {
            if c.keyword.starts_with('#')
                && !atp_lean::keywords::command_keywords().contains(&c.keyword)
                && !declared.contains(&c.keyword)
            {
                push(
                    ViolationKind::SourceUnclear,
                    c.line,
                    None,
                    format!("`{}` is not a command of Lean, Batteries or Mathlib that atp knows; remove it", c.keyword),
                );
            }
            let header = match c.keyword.as_str() {
                "prelude" => Some(
                    "`prelude` drops Lean's core library, so the file can redefine `Nat`, `Eq`, …                      under their usual names",
                ),
                "module" if !original_has("module") => Some(
                    "a `module` header the original does not have changes which declarations                      and proofs are visible",
                ),
                _ => None,
            };
            if let Some(why) = header {
                push(ViolationKind::UnsafeHeader, c.line, None, why.to_string());
            }
            if let Some(full) = &c.full_name {
                if full.split('.').any(|p| p.starts_with(RESERVED_PREFIX)) {
                    push(
                        ViolationKind::DuplicateDeclaration,
                        c.line,
                        Some(full.clone()),
                        format!("`{full}`: names starting with `{RESERVED_PREFIX}` are reserved for atp's verifier; rename it"),
                    );
                }
                if let Some(prev) = declared_at.insert(full.clone(), format!("{rel}:{}", c.line)) {
                    push(
                        ViolationKind::DuplicateDeclaration,
                        c.line,
                        Some(full.clone()),
                        format!("`{full}` is declared twice (first at {prev}); atp checks one copy while Lean elaborates the other — remove the duplicate"),
                    );
                }
            }
        }
        // imports
        for c in file.commands.iter().filter(|c| c.keyword == "import") {
            for t in &file.tokens[c.tokens.clone()] {
                if t.kind != TokenKind::Ident || t.is("import") {
                    continue;
                }
                if t.is("public") || t.is("meta") || t.is("all") {
                    continue;
                }
                let name = t.name();
                let root = t.components().first().cloned().unwrap_or_default();
                let trusted = TRUSTED_IMPORT_ROOTS.contains(&root.as_str())
                    || policy.trusted_import_roots.contains(&root);
                if !trusted && !project_modules.contains(&name) {
                    push(
                        ViolationKind::UnknownImport,
                        t.line,
                        None,
                        format!("imports `{name}`, which is neither a file of the project nor a trusted library"),
                    );
                }
            }
        }
        for c in &file.commands {
            let in_original = original_texts.contains(&strip_noncomputable(&c.text));
            let decl = c.full_name.clone();
            if c.keyword == "axiom" {
                let name = c.full_name.clone().unwrap_or_default();
                if !policy.allowed_axioms.contains(&name) {
                    push(
                        ViolationKind::Axiom,
                        c.line,
                        decl.clone(),
                        format!("declares axiom `{name}`"),
                    );
                }
            }
            if SYNTAX_KEYWORDS.contains(&c.keyword.as_str()) && !in_original {
                push(
                    ViolationKind::SyntaxExtension,
                    c.line,
                    None,
                    format!(
                        "new `{}` not in the original can change how statements parse: `{}`",
                        c.keyword,
                        short(&c.text)
                    ),
                );
            }
            if matches!(
                c.keyword.as_str(),
                "elab"
                    | "elab_rules"
                    | "initialize"
                    | "builtin_initialize"
                    | "#eval"
                    | "simproc"
                    | "dsimproc"
            ) && !in_original
            {
                let kind = if c.keyword.contains("initialize") {
                    ViolationKind::InitHook
                } else {
                    ViolationKind::Metaprogramming
                };
                push(
                    kind,
                    c.line,
                    None,
                    format!(
                        "`{}` runs code during elaboration and can forge declarations",
                        c.keyword
                    ),
                );
            }
            let new_instance = (c.keyword == "instance"
                || c.attributes
                    .iter()
                    .any(|a| a == "instance" || a == "default_instance"))
                && !in_original;
            if new_instance {
                let scope = if c.modifiers.iter().any(|m| m == "local" || m == "scoped") {
                    "local "
                } else {
                    ""
                };
                push(
                    ViolationKind::NewInstance,
                    c.line,
                    decl.clone(),
                    format!("new {scope}instance not in the original can change what statements mean: `{}`", short(&c.text)),
                );
            }
            if c.keyword == "attribute" && !in_original {
                let toks = &file.tokens[c.tokens.clone()];
                if attribute_command_names(toks)
                    .iter()
                    .any(|a| a == "instance" || a == "default_instance")
                {
                    push(
                        ViolationKind::NewInstance,
                        c.line,
                        None,
                        format!("attribute command changes instances: `{}`", short(&c.text)),
                    );
                }
            }
            // attributes, written @[…] or attribute […]
            let mut attrs: Vec<(String, usize)> =
                c.attributes.iter().map(|a| (a.clone(), c.line)).collect();
            if c.keyword == "attribute" {
                let toks = &file.tokens[c.tokens.clone()];
                attrs.extend(
                    attribute_command_names(toks)
                        .into_iter()
                        .map(|a| (a, c.line)),
                );
            }
            for (a, line) in attrs {
                if is_meta_attribute(&a) && !in_original {
                    let kind = if a == "init" || a == "builtin_init" {
                        ViolationKind::InitHook
                    } else {
                        ViolationKind::Metaprogramming
                    };
                    push(
                        kind,
                        line,
                        decl.clone(),
                        format!("@[{a}] registers code that runs during elaboration (a macro, elaborator, tactic, parser or extension)"),
                    );
                    continue;
                }
                let (kind, what) = match a.as_str() {
                    "implemented_by" => (
                        ViolationKind::ImplementedBy,
                        "@[implemented_by] makes compiled code differ from the kernel's definition",
                    ),
                    "extern" => (
                        ViolationKind::Extern,
                        "@[extern] binds a definition to foreign code",
                    ),
                    "export" => (
                        ViolationKind::Extern,
                        "@[export] exposes a definition to foreign code",
                    ),
                    "csimp" => (
                        ViolationKind::Csimp,
                        "@[csimp] replaces a function in compiled code",
                    ),
                    "init" | "builtin_init" => (
                        ViolationKind::InitHook,
                        "@[init] runs code when the module loads",
                    ),
                    _ => continue,
                };
                push(kind, line, decl.clone(), what.to_string());
            }
        }
        // token-level flags
        let toks = &file.tokens;
        let mut seen_sorry_lines = BTreeSet::new();
        for (i, t) in toks.iter().enumerate() {
            let decl = enclosing_decl(file, i);
            if is_sorry_token(t) {
                if seen_sorry_lines.insert(t.line) {
                    push(
                        ViolationKind::Sorry,
                        t.line,
                        decl.clone(),
                        format!("`{}` at {}:{}", t.text, t.line, t.col),
                    );
                }
                continue;
            }
            if t.is("#exit") {
                push(
                    ViolationKind::Exit,
                    t.line,
                    None,
                    "`#exit` stops Lean before the rest of the file is checked".into(),
                );
            }
            if t.is("set_option") {
                if let Some(opt) = toks.get(i + 1) {
                    let name = opt.name();
                    if name == "debug" || name.starts_with("debug.") {
                        push(
                            ViolationKind::DebugOption,
                            t.line,
                            decl.clone(),
                            format!("`set_option {name}` changes what Lean checks"),
                        );
                    }
                }
            }
            if t.kind != TokenKind::Ident {
                continue;
            }
            let last = t.last_component();
            let last = last.as_str();
            if t.text == "unsafe" || last.starts_with("unsafe") {
                push(
                    ViolationKind::Unsafe,
                    t.line,
                    decl.clone(),
                    format!("`{}` bypasses the kernel", t.text),
                );
            } else if META_IDENTS.contains(&t.text.as_str()) || META_LAST.contains(&last) {
                push(
                    ViolationKind::Metaprogramming,
                    t.line,
                    decl.clone(),
                    format!(
                        "`{}` runs code during elaboration and can forge declarations",
                        t.text
                    ),
                );
            } else if NATIVE_LAST.contains(&last)
                || (last == "native"
                    && (i > 0 && toks[i - 1].is_sym("+")
                        || toks.get(i + 1).is_some_and(|n| n.is_sym(":="))))
            {
                push(
                    ViolationKind::NativeDecide,
                    t.line,
                    decl.clone(),
                    format!("`{}` trusts compiled code (Lean.ofReduceBool)", t.text),
                );
            }
        }
    }
    out
}

fn enclosing_decl(file: &SourceFile, i: usize) -> Option<String> {
    let mut examples = 0;
    for c in &file.commands {
        if c.keyword == "example" {
            examples += 1;
        }
        if c.tokens.contains(&i) {
            if c.keyword == "example" {
                return Some(format!("example #{examples}"));
            }
            return c.full_name.clone();
        }
    }
    None
}

fn header(c: &Command) -> (String, String, String) {
    (
        c.kind().to_string(),
        c.visibility().to_string(),
        c.signature.clone().unwrap_or_default(),
    )
}

fn context_diff(orig: &Command, cand: &Command) -> Option<String> {
    if orig.context == cand.context {
        return None;
    }
    let o: BTreeSet<&String> = orig.context.iter().collect();
    let n: BTreeSet<&String> = cand.context.iter().collect();
    let added: Vec<&&String> = n.difference(&o).collect();
    let removed: Vec<&&String> = o.difference(&n).collect();
    Some(format!(
        "scope changed (added: [{}]; removed: [{}])",
        added
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", "),
        removed
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Compare the candidate's statements with the original's (see the module docs).
pub fn statement_check(
    candidate: &BTreeMap<String, SourceFile>,
    original: &BTreeMap<String, SourceFile>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    // identifiers used by checked statements, for the shadowing check
    let mut statement_idents: BTreeMap<String, String> = BTreeMap::new();
    let mut original_names: BTreeSet<String> = BTreeSet::new();
    for (rel, ofile) in original {
        for c in &ofile.commands {
            if let Some(n) = &c.full_name {
                original_names.insert(n.clone());
            }
        }
        let Some(cfile) = candidate.get(rel) else {
            out.push(Violation::source(
                ViolationKind::StatementMissing,
                rel,
                None,
                None,
                format!("file `{rel}` of the original is missing from the candidate"),
            ));
            continue;
        };
        for imp in &ofile.imports {
            if !cfile.imports.contains(imp) {
                out.push(Violation::source(
                    ViolationKind::ContextChanged,
                    rel,
                    Some(1),
                    None,
                    format!("import `{imp}` of the original was removed"),
                ));
            }
        }
        let by_name: BTreeMap<&str, &Command> = cfile
            .commands
            .iter()
            .filter_map(|c| c.full_name.as_deref().map(|n| (n, c)))
            .collect();
        let cand_texts: BTreeMap<String, &Command> = cfile
            .commands
            .iter()
            .map(|c| (strip_noncomputable(&c.text), c))
            .collect();
        let cand_examples: Vec<&Command> = cfile
            .commands
            .iter()
            .filter(|c| c.keyword == "example")
            .collect();
        let mut next_example = 0usize;
        let mut example_no = 0usize;
        for oc in &ofile.commands {
            let checked_statement;
            if oc.keyword == "example" {
                example_no += 1;
                let label = format!("example #{example_no}");
                checked_statement = true;
                let found = cand_examples[next_example.min(cand_examples.len())..]
                    .iter()
                    .position(|c| c.signature == oc.signature && c.context == oc.context);
                match found {
                    Some(k) => next_example += k + 1,
                    None => {
                        let hint = cand_examples
                            .get(next_example)
                            .map(|c| {
                                format!(
                                    "; candidate's next example: `{}`",
                                    short(c.signature.as_deref().unwrap_or(""))
                                )
                            })
                            .unwrap_or_default();
                        out.push(Violation::source(
                            ViolationKind::StatementChanged,
                            rel,
                            Some(oc.line),
                            Some(label.clone()),
                            format!(
                                "{label} (`{}`) is missing or changed{hint}",
                                short(oc.signature.as_deref().unwrap_or(""))
                            ),
                        ));
                    }
                }
            } else if let Some(name) = &oc.full_name {
                let obligation = oc.is_theorem() || oc.body_has_sorry;
                checked_statement = obligation;
                let Some(cc) = by_name.get(name.as_str()) else {
                    out.push(Violation::source(
                        ViolationKind::StatementMissing,
                        rel,
                        Some(oc.line),
                        Some(name.clone()),
                        format!("{} of the original is missing (deleted, renamed or moved to another namespace)", oc.label()),
                    ));
                    continue;
                };
                if obligation {
                    let (ok, ov, os) = header(oc);
                    let (ck, cv, cs) = header(cc);
                    if ok != ck {
                        out.push(Violation::source(
                            ViolationKind::StatementChanged,
                            rel,
                            Some(cc.line),
                            Some(name.clone()),
                            format!(
                                "`{name}` is a {ok} in the original but a {ck} in the candidate"
                            ),
                        ));
                    } else if ov != cv {
                        out.push(Violation::source(
                            ViolationKind::StatementChanged,
                            rel,
                            Some(cc.line),
                            Some(name.clone()),
                            format!("`{name}` is {ov} in the original but {cv} in the candidate"),
                        ));
                    } else if os != cs {
                        out.push(Violation::source(
                            ViolationKind::StatementChanged,
                            rel,
                            Some(cc.line),
                            Some(name.clone()),
                            format!(
                                "statement of `{name}` changed: original `{}`, candidate `{}`",
                                short(&os),
                                short(&cs)
                            ),
                        ));
                    } else if let Some(d) = context_diff(oc, cc) {
                        out.push(Violation::source(
                            ViolationKind::ContextChanged,
                            rel,
                            Some(cc.line),
                            Some(name.clone()),
                            format!("`{name}`: {d}"),
                        ));
                    }
                } else if strip_noncomputable(&oc.text) != strip_noncomputable(&cc.text) {
                    out.push(Violation::source(ViolationKind::StatementChanged, rel, Some(cc.line), Some(name.clone()),
                        format!("{} must stay as in the original (the statements depend on it): original `{}`, candidate `{}`",
                            oc.label(), short(&oc.text), short(&cc.text))));
                } else if let Some(d) = context_diff(oc, cc) {
                    out.push(Violation::source(
                        ViolationKind::ContextChanged,
                        rel,
                        Some(cc.line),
                        Some(name.clone()),
                        format!("`{name}`: {d}"),
                    ));
                }
            } else if is_content_command(oc) {
                checked_statement = false;
                if !cand_texts.contains_key(&strip_noncomputable(&oc.text)) {
                    out.push(Violation::source(
                        ViolationKind::StatementMissing,
                        rel,
                        Some(oc.line),
                        None,
                        format!(
                            "`{}` of the original is missing or changed",
                            short(&oc.text)
                        ),
                    ));
                }
            } else {
                checked_statement = false;
            }
            if checked_statement {
                let label = oc
                    .full_name
                    .clone()
                    .unwrap_or_else(|| format!("example #{example_no}"));
                if let Some(sig) = &oc.signature {
                    for t in atp_lean::lexer::tokenize(sig) {
                        if t.kind == TokenKind::Ident {
                            statement_idents
                                .entry(t.last_component())
                                .or_insert_with(|| label.clone());
                            statement_idents
                                .entry(t.name())
                                .or_insert_with(|| label.clone());
                        }
                    }
                }
            }
        }
    }
    // shadowing: new named declarations whose name can capture a statement's identifier
    for (rel, cfile) in candidate {
        for c in &cfile.commands {
            let Some(full) = &c.full_name else { continue };
            if original_names.contains(full) {
                continue;
            }
            let last = full.rsplit('.').next().unwrap_or(full);
            let written = c.name.as_deref().unwrap_or(last);
            let hit = statement_idents
                .get(last)
                .or_else(|| statement_idents.get(written));
            if let Some(stmt) = hit {
                out.push(Violation::source(ViolationKind::Shadowing, rel, Some(c.line), Some(full.clone()),
                    format!("new {} `{full}` can capture the name `{last}` used by the statement of `{stmt}`", c.kind())));
            }
        }
    }
    out
}

/// Commands whose presence matters although they have no name (notations, anonymous
/// instances, attribute commands, macros, …).
fn is_content_command(c: &Command) -> bool {
    !matches!(
        c.keyword.as_str(),
        "namespace"
            | "section"
            | "end"
            | "open"
            | "variable"
            | "universe"
            | "import"
            | "set_option"
            | "include"
            | "omit"
            | "export"
            | "mutual"
    ) && !c.keyword.starts_with('#')
}

/// All source-level checks: red flags, and statements when an original is given.
pub fn source_checks(
    candidate: &BTreeMap<String, String>,
    original: Option<&BTreeMap<String, String>>,
    policy: &VerifyPolicy,
) -> Vec<Violation> {
    let (cand, orig) = parse_projects(candidate, original);
    let mut v = Vec::new();
    if let Some(o) = &orig {
        v.extend(statement_check(&cand, o));
    }
    v.extend(red_flags(&cand, orig.as_ref(), policy));
    v
}

#[cfg(test)]
mod tests;
