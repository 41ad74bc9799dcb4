/-
atp's checker: judges a candidate's compiled modules against the original task's, as data.

  atp-check [--orig-root DIR] --cand-root DIR [--orig MOD]... [--cand MOD]... [--allow-native]

It never runs the candidate's code: modules are read with `readModuleDataParts` and imported with
`importModulesCore` + `finalizeImport (loadExts := false)`, so no environment extension, `[init]`
or `initialize` of any module executes. For each candidate module, in the order given:

1. every expression of its constants is rebuilt node by node (cached data such as loose bound
   variable ranges is recomputed, so a forged `.olean` cannot lie to the kernel about it);
2. its constants are replayed through the kernel (`Kernel.Environment.addDeclCore`) into the
   environment of its imports; inductive types are added as blocks and the constructors and
   recursors the kernel generates must equal the stored ones;
3. the axioms of each of its constants are collected in that replayed environment, by the
   checker's own traversal.

Then every obligation of the original (a theorem, a definition whose body uses `sorryAx`, the
renamed examples `_atp_example_<k>`) must exist in the candidate with the same kind, universe
parameters and elaborated type (`Expr` equality), every other declaration of the original that a
checked one mentions must be identical, and every import of an original module must stay.

Output: one JSON object per line on stdout (the protocol atp parses strictly, version 1):
  {"t":"hello","protocol":1,"lean":V}
  {"t":"module","module":M,"constants":N}          replayed
  {"t":"kernel","module":M,"decl":D,"error":E}      the kernel refused D (module not judged further)
  {"t":"axioms","module":M,"decl":D,"axioms":[A…]}  for every constant of a replayed module
  {"t":"import","module":M,"missing":I}             an import of the original module M is gone
  {"t":"obligation","module":M,"decl":D,"kind":K,"status":S}
      S: ok | missing | kind_mismatch | level_mismatch | type_mismatch | value_mismatch
  {"t":"done","modules":N,"obligations":K}          last line
  {"t":"error","message":E}                          the checker could not run (exit 1)

Lean APIs are those of leanprover/lean4 v4.28.0 (the ones lean4checker's v4.28.0 tag uses to load
and replay modules, plus `Kernel.Environment.addDeclWithoutChecking` for `--allow-native`).
-/
import Lean

open Lean

namespace AtpCheck

/-! ## Output -/

def jsonStr (s : String) : String := Id.run do
  let mut out := "\""
  for c in s.toList do
    if c == '"' then out := out ++ "\\\""
    else if c == '\\' then out := out ++ "\\\\"
    else if c == '\n' then out := out ++ "\\n"
    else if c.toNat < 0x20 then
      let h := Nat.toDigits 16 c.toNat
      out := out ++ "\\u" ++ String.mk (List.replicate (4 - h.length) '0' ++ h)
    else out := out.push c
  return out ++ "\""

def jsonArr (xs : List String) : String :=
  "[" ++ ",".intercalate (xs.map jsonStr) ++ "]"

def emit (fields : List (String × String)) : IO Unit := do
  let body := ",".intercalate (fields.map fun (k, v) => jsonStr k ++ ":" ++ v)
  IO.println ("{" ++ body ++ "}")
  (← IO.getStdout).flush

/-! ## Arguments -/

structure Args where
  origRoot : Option System.FilePath := none
  candRoot : Option System.FilePath := none
  orig : Array Name := #[]
  cand : Array Name := #[]
  allowNative : Bool := false

def parseArgs : List String → Args → Except String Args
  | [], a => .ok a
  | "--orig-root" :: d :: r, a => parseArgs r { a with origRoot := some d }
  | "--cand-root" :: d :: r, a => parseArgs r { a with candRoot := some d }
  | "--orig" :: m :: r, a => parseArgs r { a with orig := a.orig.push m.toName }
  | "--cand" :: m :: r, a => parseArgs r { a with cand := a.cand.push m.toName }
  | "--allow-native" :: r, a => parseArgs r { a with allowNative := true }
  | x :: _, _ => .error s!"unknown argument `{x}`"

/-! ## Rebuilding data read from a module -/

partial def rebuildName : Name → Name
  | .anonymous => .anonymous
  | .str p s => .str (rebuildName p) s
  | .num p n => .num (rebuildName p) n

partial def rebuildLevel : Level → Level
  | .zero => .zero
  | .succ l => .succ (rebuildLevel l)
  | .max a b => .max (rebuildLevel a) (rebuildLevel b)
  | .imax a b => .imax (rebuildLevel a) (rebuildLevel b)
  | .param n => .param (rebuildName n)
  | .mvar m => .mvar m

/-- Rebuild `e` bottom-up through the constructors (which recompute each node's cached data),
sharing rebuilt subterms through a cache so that shared proof terms stay shared. -/
partial def rebuildExpr (e : Expr) : StateM (Std.HashMap Expr Expr) Expr := do
  if let some r := (← get).get? e then return r
  let r ← match e with
    | .bvar i => pure (.bvar i)
    | .fvar f => pure (.fvar f)
    | .mvar m => pure (.mvar m)
    | .sort l => pure (.sort (rebuildLevel l))
    | .const n ls => pure (.const (rebuildName n) (ls.map rebuildLevel))
    | .app f a => return .app (← rebuildExpr f) (← rebuildExpr a)
    | .lam n t b bi => return .lam n (← rebuildExpr t) (← rebuildExpr b) bi
    | .forallE n t b bi => return .forallE n (← rebuildExpr t) (← rebuildExpr b) bi
    | .letE n t v b nd => return .letE n (← rebuildExpr t) (← rebuildExpr v) (← rebuildExpr b) nd
    | .lit (.natVal n) => pure (.lit (.natVal n))
    | .lit (.strVal s) => pure (.lit (.strVal s))
    | .mdata m b => return .mdata m (← rebuildExpr b)
    | .proj s i b => return .proj (rebuildName s) i (← rebuildExpr b)
  modify (·.insert e r)
  return r

def rebuild (e : Expr) : Expr := (rebuildExpr e).run' {}

def rebuildConstant : ConstantInfo → ConstantInfo
  | .defnInfo v => .defnInfo { v with name := rebuildName v.name, type := rebuild v.type,
      value := rebuild v.value, all := v.all.map rebuildName }
  | .thmInfo v => .thmInfo { v with name := rebuildName v.name, type := rebuild v.type,
      value := rebuild v.value, all := v.all.map rebuildName }
  | .opaqueInfo v => .opaqueInfo { v with name := rebuildName v.name, type := rebuild v.type,
      value := rebuild v.value, all := v.all.map rebuildName }
  | .axiomInfo v => .axiomInfo { v with name := rebuildName v.name, type := rebuild v.type }
  | .inductInfo v => .inductInfo { v with name := rebuildName v.name, type := rebuild v.type,
      all := v.all.map rebuildName, ctors := v.ctors.map rebuildName }
  | .ctorInfo v => .ctorInfo { v with name := rebuildName v.name, type := rebuild v.type,
      induct := rebuildName v.induct }
  | .recInfo v => .recInfo { v with name := rebuildName v.name, type := rebuild v.type,
      all := v.all.map rebuildName }
  | .quotInfo v => .quotInfo { v with name := rebuildName v.name, type := rebuild v.type }

/-! ## Reading modules as data -/

/-- All parts of module `m`'s `.olean` under `root` (the module system splits a module into
exported, server and private parts; the last part read holds every constant). -/
unsafe def readParts (root : System.FilePath) (m : Name) :
    IO (Array Import × Array Name × Array ConstantInfo) := do
  let file := modToFilePath root m "olean"
  unless (← file.pathExists) do
    throw <| IO.userError s!"no .olean for module {m} at {file}"
  let mut files := #[file]
  let server := OLeanLevel.server.adjustFileName file
  if (← server.pathExists) then
    files := files.push server
    let priv := OLeanLevel.private.adjustFileName file
    if (← priv.pathExists) then
      files := files.push priv
  let parts ← readModuleDataParts files
  if h : parts.size = 0 then
    throw <| IO.userError s!"cannot read module data of {m}"
  else
    let first := parts[0].1
    let last := parts[parts.size - 1].1
    return (first.imports, last.constNames, last.constants)

/-! ## Names -/

/-- The user-facing name of a private name `_private.<Module>.<num>.<name>`. -/
def userName (n : Name) : Name :=
  let cs := n.components
  match cs with
  | c :: rest =>
    if c == `_private then
      let afterNum := rest.dropWhile (fun p => !p.isNum)
      (afterNum.drop 1).foldl (fun acc p => acc ++ p) .anonymous
    else n
  | [] => n

def exampleIndex? (n : Name) : Option Nat :=
  match userName n with
  | .str _ s => if s.startsWith "_atp_example_" then (s.replace "_atp_example_" "").toNat? else none
  | _ => none

/-- Generated names (`match_1`, `proof_2`, `_aux…`, numeric parts), which are details of the
declarations that are checked rather than obligations of their own. -/
def isGenerated (n : Name) : Bool :=
  (userName n).components.any fun
    | .str _ s => s.startsWith "_" || s.startsWith "match_" || s.startsWith "proof_"
        || s.startsWith "eq_" || s.startsWith "omega_"
    | .num .. => true
    | .anonymous => false

def kindOf : ConstantInfo → String
  | .defnInfo _ => "def" | .thmInfo _ => "theorem" | .opaqueInfo _ => "opaque"
  | .axiomInfo _ => "axiom" | .inductInfo _ => "inductive" | .ctorInfo _ => "constructor"
  | .recInfo _ => "recursor" | .quotInfo _ => "quot"

def valueOf? : ConstantInfo → Option Expr
  | .defnInfo v => some v.value | .opaqueInfo v => some v.value | _ => none

/-! ## Kernel replay -/

structure Replay where
  env : Kernel.Environment
  todo : Std.HashMap Name ConstantInfo
  done : NameSet := {}
  ctors : Array ConstantInfo := #[]
  recs : Array ConstantInfo := #[]
  allowNative : Bool

abbrev ReplayM := StateT Replay (ExceptT (Name × String) IO)

def addDecl (n : Name) (d : Declaration) (trusted : Bool) : ReplayM Unit := do
  let s ← get
  let r := if trusted then s.env.addDeclWithoutChecking d else s.env.addDeclCore 0 d (cancelTk? := none)
  match r with
  | .ok env => set { s with env }
  | .error ex => throwThe (Name × String) (n, ← (ex.toMessageData {}).toString)

/-- Whether `ci` (through the candidate's own constants) uses `Lean.ofReduceBool`/`ofReduceNat`:
under `--allow-native` such a constant is added unchecked (the kernel would need to run code). -/
partial def usesNative (todo : Std.HashMap Name ConstantInfo) (seen : NameSet) (ci : ConstantInfo) :
    Bool :=
  ci.getUsedConstantsAsSet.toList.any fun c =>
    c == ``Lean.ofReduceBool || c == ``Lean.ofReduceNat ||
      (!seen.contains c && (todo.get? c).any (usesNative todo (seen.insert c)))

partial def replayName (n : Name) : ReplayM Unit := do
  let s ← get
  if s.done.contains n then return
  let some ci := s.todo.get? n | return
  modify fun s => { s with done := s.done.insert n }
  -- like lean4checker: unsafe and partial constants (and the compiler's `_unsafe_rec` shims)
  -- are not sent to the kernel, so a safe declaration that uses one is refused as unknown
  if ci.isUnsafe || ci.isPartial then return
  for c in ci.getUsedConstantsAsSet.toList do replayName c
  let trusted := s.allowNative && usesNative s.todo {} ci
  match ci with
  | .defnInfo v => addDecl n (.defnDecl v) trusted
  | .thmInfo v => addDecl n (.thmDecl v) trusted
  | .opaqueInfo v => addDecl n (.opaqueDecl v) trusted
  | .axiomInfo v => addDecl n (.axiomDecl v) false
  | .quotInfo _ => do replayName ``Eq; addDecl n .quotDecl false
  | .ctorInfo v => do
      modify fun s => { s with ctors := s.ctors.push ci }
      replayName v.induct
  | .recInfo v => do
      modify fun s => { s with recs := s.recs.push ci }
      for i in v.all do replayName i
  | .inductInfo v => do
      let s ← get
      let mut types : List InductiveType := []
      for i in v.all do
        let some (.inductInfo iv) := s.todo.get? i | throwThe (Name × String) (i, "inductive block member missing")
        modify fun s => { s with done := s.done.insert i }
        let mut ctors : List Constructor := []
        for c in iv.ctors do
          let some cc := s.todo.get? c | throwThe (Name × String) (c, "constructor missing")
          for d in cc.getUsedConstantsAsSet.toList do
            unless v.all.contains d || iv.ctors.contains d do replayName d
          ctors := ctors ++ [{ name := c, type := cc.type }]
        types := types ++ [{ name := i, type := iv.type, ctors }]
      addDecl n (.inductDecl v.levelParams v.numParams types v.isUnsafe) false

/-- Replay `consts` into `env`; the kernel's constructors and recursors must equal the stored. -/
def replay (env : Kernel.Environment) (consts : Array ConstantInfo) (allowNative : Bool) :
    ExceptT (Name × String) IO Kernel.Environment := do
  let todo := consts.foldl (fun m ci => m.insert ci.name ci) {}
  let (_, s) ← (consts.forM fun ci => replayName ci.name).run { env, todo, allowNative }
  for ci in s.ctors ++ s.recs do
    match s.env.find? ci.name, ci with
    | some (.ctorInfo k), .ctorInfo v => unless k == v do throwThe (Name × String) (ci.name, "constructor differs")
    | some (.recInfo k), .recInfo v => unless k == v do throwThe (Name × String) (ci.name, "recursor differs")
    | _, _ => throwThe (Name × String) (ci.name, "not generated by the kernel")
  return s.env

/-! ## Axioms, in the checker's own environment -/

partial def axiomsOf (env : Kernel.Environment) (n : Name) :
    StateM (Std.HashMap Name NameSet) NameSet := do
  if let some r := (← get).get? n then return r
  modify (·.insert n {})  -- cycles through mutual blocks terminate
  let r ← match env.find? n with
    | none => pure ({} : NameSet)
    | some ci =>
      let own : NameSet := if ci matches .axiomInfo _ then NameSet.empty.insert n else {}
      ci.getUsedConstantsAsSet.toList.foldlM (init := own) fun acc c => do
        return (← axiomsOf env c).toList.foldl (fun a x => a.insert x) acc
  modify (·.insert n r)
  return r

/-! ## Comparison with the original -/

def sameLevels (a b : ConstantInfo) : Bool := a.levelParams == b.levelParams

/-- Compare candidate `c` with original `o`; `exact` also compares values and shapes. -/
def compareConst (o c : ConstantInfo) (exact : Bool) : String :=
  if kindOf o != kindOf c then "kind_mismatch"
  else if !sameLevels o c then "level_mismatch"
  else if o.type != c.type then "type_mismatch"
  else if !exact then "ok"
  else match o, c with
    | .inductInfo a, .inductInfo b =>
      if a.numParams == b.numParams && a.numIndices == b.numIndices && a.all == b.all &&
        a.ctors == b.ctors && a.isRec == b.isRec && a.isUnsafe == b.isUnsafe then "ok"
      else "value_mismatch"
    | .ctorInfo a, .ctorInfo b =>
      if a.induct == b.induct && a.cidx == b.cidx && a.numParams == b.numParams &&
        a.numFields == b.numFields then "ok" else "value_mismatch"
    | .defnInfo a, .defnInfo b =>
      if a.value == b.value && a.safety == b.safety then "ok" else "value_mismatch"
    | .opaqueInfo a, .opaqueInfo b => if a.value == b.value then "ok" else "value_mismatch"
    | _, _ => "ok"

/-- Whether `ci`'s value uses `sorryAx`, directly or through constants of the original. -/
partial def usesSorry (orig : Std.HashMap Name (Name × ConstantInfo)) (seen : NameSet)
    (ci : ConstantInfo) : Bool :=
  ci.getUsedConstantsAsSet.toList.any fun c =>
    c == ``sorryAx ||
      (!seen.contains c && (orig.get? c).any fun (_, d) => usesSorry orig (seen.insert c) d)

/-! ## Main -/

unsafe def run (a : Args) : IO UInt32 := do
  let some candRoot := a.candRoot | throw <| IO.userError "--cand-root is required"
  initSearchPath (← findSysroot)
  -- trusted paths first: a candidate file named like a library module never shadows it
  searchPathRef.modify (· ++ [candRoot])
  emit [("t", jsonStr "hello"), ("protocol", "1"), ("lean", jsonStr Lean.versionString)]
  -- the candidate, module by module
  let mut candConsts : Std.HashMap Name (Name × ConstantInfo) := {}
  let mut candImports : Std.HashMap Name (Array Name) := {}
  for m in a.cand do
    let (imports, _, consts) ← readParts candRoot m
    candImports := candImports.insert m (imports.map (·.module))
    for imp in imports do
      let found ← (← searchPathRef.get).findWithExt "olean" imp.module
      let inCand := a.cand.contains imp.module
      let underCand := found.any fun f => f.toString.startsWith candRoot.toString
      if inCand != underCand then
        throw <| IO.userError s!"import {imp.module} of {m} does not resolve to {if inCand then "the candidate" else "a trusted library"}"
    let consts := consts.map rebuildConstant
    for ci in consts do candConsts := candConsts.insert ci.name (m, ci)
    let (_, st) ← importModulesCore imports |>.run
    let env ← finalizeImport st imports {} 0 false false (isModule := true)
    match ← (replay env.toKernelEnv consts a.allowNative).run with
    | .error (d, msg) =>
      emit [("t", jsonStr "kernel"), ("module", jsonStr m.toString), ("decl", jsonStr d.toString),
        ("error", jsonStr msg)]
    | .ok kenv =>
      emit [("t", jsonStr "module"), ("module", jsonStr m.toString),
        ("constants", toString consts.size)]
      let mut cache : Std.HashMap Name NameSet := {}
      for ci in consts do
        let (axs, c') := (axiomsOf kenv ci.name).run cache
        cache := c'
        let names := axs.toList.map (·.toString) |>.toArray.qsort (· < ·) |>.toList
        emit [("t", jsonStr "axioms"), ("module", jsonStr m.toString),
          ("decl", jsonStr ci.name.toString), ("axioms", jsonArr names)]
  -- the original's obligations
  let mut obligations := 0
  if let some origRoot := a.origRoot then
    let mut orig : Std.HashMap Name (Name × ConstantInfo) := {}
    let mut order : Array Name := #[]
    for m in a.orig do
      let (imports, _, consts) ← readParts origRoot m
      for imp in imports do
        let kept := (candImports.get? m).any (·.contains imp.module)
        unless kept do
          emit [("t", jsonStr "import"), ("module", jsonStr m.toString),
            ("missing", jsonStr imp.module.toString)]
      for ci in consts do
        orig := orig.insert ci.name (m, ci)
        order := order.push ci.name
    -- obligations (type only) and exact declarations, closed under references
    let mut checks : Array (Name × Bool) := #[]
    let mut queued : NameSet := {}
    for n in order do
      let some (_, ci) := orig.get? n | continue
      if exampleIndex? n |>.isSome then continue
      if isGenerated n then continue
      let obligation := ci matches .thmInfo _ || ((valueOf? ci).isSome && usesSorry orig {} ci)
      checks := checks.push (n, !obligation)
      queued := queued.insert n
    let mut i := 0
    while h : i < checks.size do
      let (n, exact) := checks[i]
      i := i + 1
      let some (_, ci) := orig.get? n | continue
      let refs := ci.type.getUsedConstants ++ (if exact then ((valueOf? ci).map (·.getUsedConstants)).getD #[] else #[])
      for r in refs do
        if orig.contains r && !queued.contains r then
          queued := queued.insert r
          checks := checks.push (r, true)
    for (n, exact) in checks do
      let some (m, o) := orig.get? n | continue
      let status := match candConsts.get? n with
        | none => "missing"
        | some (_, c) => compareConst o c exact
      obligations := obligations + 1
      emit [("t", jsonStr "obligation"), ("module", jsonStr m.toString), ("decl", jsonStr n.toString),
        ("kind", jsonStr (kindOf o)), ("status", jsonStr status)]
    -- examples: in order, each matched by a later candidate example of the same type
    for m in a.orig do
      let ex (src : Std.HashMap Name (Name × ConstantInfo)) : Array (Nat × ConstantInfo) :=
        (src.toArray.filterMap fun (n, (mod, ci)) =>
          if mod == m then (exampleIndex? n).map (·, ci) else none).qsort (·.1 < ·.1)
      let cands := ex candConsts
      let mut next := 0
      for (_, o) in ex orig do
        let found := (cands.extract next cands.size).findIdx? fun (_, c) => compareConst o c false == "ok"
        let status := match found with
          | some _ => "ok"
          | none => "missing"
        if let some k := found then next := next + k + 1
        obligations := obligations + 1
        emit [("t", jsonStr "obligation"), ("module", jsonStr m.toString),
          ("decl", jsonStr o.name.toString), ("kind", jsonStr "example"), ("status", jsonStr status)]
  emit [("t", jsonStr "done"), ("modules", toString a.cand.size), ("obligations", toString obligations)]
  return 0

end AtpCheck

unsafe def main (args : List String) : IO UInt32 := do
  match AtpCheck.parseArgs args {} with
  | .error e =>
    AtpCheck.emit [("t", AtpCheck.jsonStr "error"), ("message", AtpCheck.jsonStr e)]
    return 1
  | .ok a =>
    try AtpCheck.run a
    catch e =>
      AtpCheck.emit [("t", AtpCheck.jsonStr "error"), ("message", AtpCheck.jsonStr (toString e))]
      return 1
