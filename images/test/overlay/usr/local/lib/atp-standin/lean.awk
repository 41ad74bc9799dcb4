# Part of the STAND-IN `lake` for tests (see /usr/local/bin/lake). Not Lean.
# Input: one .lean file. Vars: FILE (path as given), STYLE (backtick|quote), OUT (the `.olean`
# to write, empty for none). POSIX/busybox awk only.
#
# Prints Lean's message formats for what it recognises (sorry warnings, STANDIN_ERROR, a
# non-positive inductive as Lean's kernel reports it) and, when the file compiles and OUT is set,
# writes a stand-in ".olean": a text file the stand-in checker (atp-check) reads:
#   ATP-STANDIN-OLEAN 1
#   import<TAB>MOD
#   decl<TAB>KIND<TAB>FULLNAME<TAB>OWN_AXIOMS|-<TAB>FLAGS|-<TAB>REFS<TAB>SIG<TAB>VALUE
# OWN_AXIOMS: sorry → sorryAx; native_decide → Lean.ofReduceBool, Lean.trustCompiler; a tactic
# proof (`by`) → propext, Classical.choice, Quot.sound; an `axiom` → itself. FLAGS: kernel_reject
# for a declaration holding STANDIN_KERNEL_REJECT, or one forged by `-- STANDIN_FORGE NAME : TYPE`
# (emulates a declaration added to the environment without the kernel, e.g. by `run_cmd` under
# `debug.skipKernelTC`). SIG/VALUE: the statement and the body, normalised the way Lean's
# elaborated terms compare (`fun`/`λ`, `=>`/`↦`, `->`/`→`, «names», spacing).
#
# DECLS (a path, empty for none; used by the stand-in Lean REPL, lean-repl) receives the
# declarations' places, whether or not the file compiles:
#   decl<TAB>KIND<TAB>NAME<TAB>FULLNAME<TAB>START_LINE<TAB>END_LINE<TAB>END_COL<TAB>NAMESPACE<TAB>SIG
#   sorry<TAB>LINE<TAB>COL            (a `sorry`/`admit` token, in the last decl line above)
# NAME is empty for an `example`; lines are 1-based, columns 0-based; END is the end of the
# declaration's last non-blank line.

function clean(line,    out, i, c, n, nx) {
  # Blank out comments and string literals, keeping columns.
  out = ""; n = length(line); i = 1
  while (i <= n) {
    c = substr(line, i, 1); nx = substr(line, i + 1, 1)
    if (depth > 0) {
      if (c == "/" && nx == "-") { depth++; out = out "  "; i += 2; continue }
      if (c == "-" && nx == "/") { depth--; out = out "  "; i += 2; continue }
      out = out " "; i++; continue
    }
    if (instr) {
      if (c == "\\") { out = out "  "; i += 2; continue }
      if (c == "\"") { instr = 0 }
      out = out " "; i++; continue
    }
    if (c == "-" && nx == "-") { break }
    if (c == "/" && nx == "-") { depth++; out = out "  "; i += 2; continue }
    if (c == "\"") { instr = 1; out = out " "; i++; continue }
    out = out c; i++
  }
  return out
}

function addset(set, x) {
  if (x == "") return set
  if (index("|" set "|", "|" x "|") > 0) return set
  return (set == "" ? x : set "|" x)
}

function qualify(name,    k, p) {
  if (substr(name, 1, 7) == "_root_.") return substr(name, 8)
  p = ""
  for (k = 1; k <= nsd; k++) if (ns[k] != "") p = p ns[k] "."
  return p name
}

function norm(s) {
  gsub(/«/, "", s); gsub(/»/, "", s)
  gsub(/↦/, "=>", s); gsub(/->/, "→", s); gsub(/λ/, " fun ", s)
  gsub(/[][(){},:]/, " & ", s)
  gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
  return s
}

BEGIN {
  depth = 0; instr = 0; nd = 0; cur = 0; nsd = 0; stop = 0; nerr = 0; nimp = 0; indcur = 0
  declre = "^(@\\[[^]]*\\][ \t]*)?((private|protected|noncomputable|partial|unsafe|nonrec|local|scoped)[ \t]+)*(theorem|lemma|def|abbrev|instance|example|opaque|axiom|structure|class|inductive)([ \t]|$)"
}

{
  raw = $0
  if (stop) next
  line = clean(raw); cl = line
  if (index(raw, "STANDIN_ERROR") > 0) {
    nerr++; errline[nerr] = NR
    match(raw, /[^ \t]/); errcol[nerr] = RSTART - 1; errmsg[nerr] = "unsolved goals\n⊢ False"
  }
  if (match(raw, /--[ \t]*STANDIN_FORGE[ \t]/)) {
    rest = substr(raw, RSTART + RLENGTH); p = index(rest, ":")
    nd++; dkind[nd] = "theorem"; dline[nd] = NR; dcol[nd] = 0
    nm = rest; sub(/[ \t]*:.*$/, "", nm); dname[nd] = nm; dfull[nd] = qualify(nm)
    dflag[nd] = "kernel_reject"; dtext[nd] = substr(rest, p); byname[nm] = nd; byname[dfull[nd]] = nd
    next
  }
  if (line ~ /^import[ \t]/) { split(line, w, /[ \t]+/); nimp++; imp[nimp] = w[2]; next }
  if (line ~ /^#exit([ \t]|$)/) { stop = 1; next }
  if (line ~ /^[ \t]*namespace[ \t]/) {
    split(line, w, /[ \t]+/); nm = (w[1] == "" ? w[3] : w[2]); gsub(/[«»]/, "", nm)
    np = split(nm, parts, ".")
    for (k = 1; k <= np; k++) { nsd++; ns[nsd] = parts[k]; kind_scope[nsd] = "ns" }
    cur = 0; next
  }
  if (line ~ /^[ \t]*(section|mutual)([ \t]|$)/) { nsd++; ns[nsd] = ""; kind_scope[nsd] = "sec"; cur = 0; next }
  if (line ~ /^[ \t]*end([ \t]|$)/) {
    split(line, w, /[ \t]+/); nm = (w[1] == "" ? w[3] : w[2]); gsub(/[«»]/, "", nm)
    cnt = 1
    if (nm != "" && kind_scope[nsd] == "ns") cnt = split(nm, parts, ".")
    for (k = 0; k < cnt && nsd > 0; k++) nsd--
    cur = 0; next
  }
  if (match(line, declre)) {
    # find the keyword and the name after it
    kw = ""
    n = split(line, w, /[ \t]+/)
    for (k = 1; k <= n; k++) {
      if (w[k] ~ /^(theorem|lemma|def|abbrev|instance|example|opaque|axiom|structure|class|inductive)$/) { kw = w[k]; kwi = k; break }
    }
    nd++; cur = nd; dkind[nd] = kw; dline[nd] = NR; dflag[nd] = ""; dns[nd] = curns()
    kwpos = match(line, "(^|[ \t\\]])" kw "([ \t]|$)")
    if (substr(line, kwpos, 1) != substr(kw, 1, 1)) kwpos++
    nm = (kwi < n ? w[kwi + 1] : "")
    if (kw == "example" || nm == ":" || nm ~ /^[({:[]/ || nm == "where") nm = ""
    if (nm != "") {
      sub(/[({:[].*$/, "", nm)
      npos = index(substr(line, kwpos + length(kw)), nm)
      dcol[nd] = kwpos + length(kw) + npos - 2
      dname[nd] = nm; gsub(/[«»]/, "", nm); dfull[nd] = qualify(nm)
      byname[nm] = nd; byname[dfull[nd]] = nd
    } else {
      dcol[nd] = kwpos - 1; dname[nd] = ""; dfull[nd] = ""
    }
    if (kw == "axiom" && nm != "") dax[nd] = dfull[nd]
    if (kw == "inductive") { indcur = nd; indname[nd] = nm } else { indcur = 0 }
    # the rest of the line after the name
    line = substr(line, kwpos + length(kw))
    if (nm != "") { p = index(line, dname[nd]); if (p > 0) line = substr(line, p + length(dname[nd])) }
    dtext[nd] = line
  } else if (line ~ /^[^ \t|]/) {
    # another command in column 0 ends the current declaration
    cur = 0; indcur = 0
  } else if (cur > 0) {
    dtext[cur] = dtext[cur] " " line
  }
  if (cur > 0 && index(raw, "STANDIN_KERNEL_REJECT") > 0) dflag[cur] = "kernel_reject"
  # a constructor taking a function out of the type being defined: not strictly positive
  if (indcur > 0 && indname[indcur] != "" && line ~ /^[ \t]*\|/) {
    t = line; gsub(/[ \t]+/, " ", t)
    if (index(t, "(" indname[indcur] " →") > 0 || index(t, "(" indname[indcur] " ->") > 0) {
      nerr++; errline[nerr] = dline[indcur]; errcol[nerr] = 0
      c = t; sub(/^ ?\| ?/, "", c); sub(/[ :].*$/, "", c)
      errmsg[nerr] = "(kernel) arg #1 of '" dfull[indcur] "." c "' has a non positive occurrence of the datatypes being declared"
    }
  }
  if (cur > 0 && cl ~ /[^ \t]/) { dend[cur] = NR; dendc[cur] = length(raw) }
  if (cur > 0 && DECLS != "") {
    s = cl; off = 0
    while (match(s, /(^|[^A-Za-z0-9_'.])(sorry|admit)([^A-Za-z0-9_'?!]|$)/)) {
      p = RSTART; if (substr(s, p, 1) != "s" && substr(s, p, 1) != "a") p++
      nsorry++; sorryd[nsorry] = cur; sorryl[nsorry] = NR; sorryc[nsorry] = off + p - 1
      off += p + 4; s = substr(s, p + 5)
    }
  }
  if (cur > 0) {
    s = line
    gsub(/[][(){}<>:;,=+*\/|&^%$#@~`\\-]/, " ", s)
    n = split(s, w, /[ \t]+/)
    for (k = 1; k <= n; k++) {
      t = w[k]
      if (t == "") continue
      if (t == "sorry" || t == "admit" || t == "sorryAx") dsorry[cur] = 1
      else if (t == "native_decide") dnative[cur] = 1
      else if (t == "by") dby[cur] = 1
      else refs[cur] = refs[cur] " " t
    }
  }
}

END {
  q1 = (STYLE == "quote") ? "'" : "`"
  # messages in line order
  e = 1
  for (i = 1; i <= nd; i++) {
    while (e <= nerr && errline[e] <= dline[i]) { printerr(e); e++ }
    if (dsorry[i]) printf "%s:%d:%d: warning: declaration uses %ssorry%s\n", FILE, dline[i], dcol[i], q1, q1
  }
  while (e <= nerr) { printerr(e); e++ }
  if (nerr == 0 && OUT != "") {
    print "ATP-STANDIN-OLEAN 1" > OUT
    for (k = 1; k <= nimp; k++) printf "import\t%s\n", imp[k] > OUT
    for (i = 1; i <= nd; i++) {
      full = dfull[i]
      if (full == "") continue
      own = ""
      if (dby[i]) { own = addset(own, "propext"); own = addset(own, "Classical.choice"); own = addset(own, "Quot.sound") }
      if (dsorry[i]) own = addset(own, "sorryAx")
      if (dnative[i]) { own = addset(own, "Lean.ofReduceBool"); own = addset(own, "Lean.trustCompiler") }
      if (i in dax) own = addset(own, dax[i])
      t = dtext[i]; p = index(t, ":=")
      if (p > 0) { sig = substr(t, 1, p - 1); val = substr(t, p + 2) } else { sig = t; val = "" }
      r = refs[i]; gsub(/[«»]/, "", r); sub(/^ +/, "", r)
      printf "decl\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dkind[i], full, (own == "" ? "-" : own), (dflag[i] == "" ? "-" : dflag[i]), (r == "" ? "-" : r), norm(sig), norm(val) > OUT
    }
    close(OUT)
  }
  if (DECLS != "") {
    printf "" > DECLS
    k = 1
    for (i = 1; i <= nd; i++) {
      t = dtext[i]; p = index(t, ":=")
      sig = (p > 0 ? substr(t, 1, p - 1) : t); gsub(/[ \t]+/, " ", sig); sub(/^ /, "", sig); sub(/ $/, "", sig)
      printf "decl\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", dkind[i], dname[i], dfull[i], dline[i], (dend[i] ? dend[i] : dline[i]), dendc[i], dns[i], sig > DECLS
      while (k <= nsorry && sorryd[k] == i) { printf "sorry\t%d\t%d\n", sorryl[k], sorryc[k] > DECLS; k++ }
    }
    close(DECLS)
  }
  exit (nerr > 0 ? 1 : 0)
}

function curns(    k, p) {
  p = ""
  for (k = 1; k <= nsd; k++) if (ns[k] != "") p = (p == "" ? ns[k] : p "." ns[k])
  return p
}

function printerr(k) {
  printf "%s:%d:%d: error: %s\n", FILE, errline[k], errcol[k], errmsg[k]
}
