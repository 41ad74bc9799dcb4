# Part of the STAND-IN `lake` for tests (see /usr/local/bin/lake). Not Lean.
# Input: one .lean file. Vars: FILE (path as given), STYLE (backtick|quote).
# POSIX/busybox awk only.

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

BEGIN {
  depth = 0; instr = 0; nd = 0; cur = 0; nsd = 0; stop = 0; probe = 0; nerr = 0; exk = 0
  declre = "^(@\\[[^]]*\\][ \t]*)?((private|protected|noncomputable|partial|unsafe|nonrec|local|scoped)[ \t]+)*(theorem|lemma|def|abbrev|instance|example|opaque|axiom|structure|class|inductive)([ \t]|$)"
}

{
  raw = $0
  if (stop) next
  if (index(raw, "-- atp-axiom-probe ") == 1) {
    probe = 1; probeline = NR; split(raw, pw, " "); nonce = pw[3]; stop = 1; next
  }
  line = clean(raw)
  if (index(raw, "STANDIN_ERROR") > 0) {
    nerr++; errline[nerr] = NR
    match(raw, /[^ \t]/); errcol[nerr] = RSTART - 1
  }
  if (line ~ /^#exit([ \t]|$)/) { stop = 1; next }
  if (line ~ /^[ \t]*namespace[ \t]/) {
    split(line, w, /[ \t]+/); nm = (w[1] == "" ? w[3] : w[2])
    np = split(nm, parts, ".")
    for (k = 1; k <= np; k++) { nsd++; ns[nsd] = parts[k]; kind_scope[nsd] = "ns" }
    cur = 0; next
  }
  if (line ~ /^[ \t]*(section|mutual)([ \t]|$)/) { nsd++; ns[nsd] = ""; kind_scope[nsd] = "sec"; cur = 0; next }
  if (line ~ /^[ \t]*end([ \t]|$)/) {
    split(line, w, /[ \t]+/); nm = (w[1] == "" ? w[3] : w[2])
    cnt = 1
    if (nm != "" && kind_scope[nsd] == "ns") cnt = split(nm, parts, ".")
    for (k = 0; k < cnt && nsd > 0; k++) nsd--
    cur = 0; next
  }
  if (match(line, declre)) {
    # find the keyword and the name after it
    rest = line; kw = ""
    n = split(line, w, /[ \t]+/)
    for (k = 1; k <= n; k++) {
      if (w[k] ~ /^(theorem|lemma|def|abbrev|instance|example|opaque|axiom|structure|class|inductive)$/) { kw = w[k]; kwi = k; break }
    }
    nd++; cur = nd; dkind[nd] = kw; dline[nd] = NR
    kwpos = match(line, "(^|[ \t\\]])" kw "([ \t]|$)")
    if (substr(line, kwpos, 1) != substr(kw, 1, 1)) kwpos++
    nm = (kwi < n ? w[kwi + 1] : "")
    if (kw == "example" || nm == ":" || nm ~ /^[({:[]/ || nm == "where") nm = ""
    if (nm != "") {
      sub(/[({:[].*$/, "", nm)
      npos = index(substr(line, kwpos + length(kw)), nm)
      dcol[nd] = kwpos + length(kw) + npos - 2
      dname[nd] = nm; dfull[nd] = qualify(nm)
      byname[nm] = nd; byname[dfull[nd]] = nd
    } else {
      dcol[nd] = kwpos - 1; dname[nd] = ""; dfull[nd] = ""
    }
    if (kw == "axiom" && nm != "") dax[nd] = dfull[nd]
    # scan the rest of the line after the name
    line = substr(line, kwpos + length(kw))
    if (nm != "") { p = index(line, nm); if (p > 0) line = substr(line, p + length(nm)) }
  } else if (line ~ /^[^ \t]/) {
    # another command in column 0 ends the current declaration
    cur = 0
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

function axlist(i,    s) {
  return ax[i]
}

END {
  # own axioms
  for (i = 1; i <= nd; i++) {
    ax[i] = ""
    if (dby[i]) { ax[i] = addset(ax[i], "propext"); ax[i] = addset(ax[i], "Classical.choice"); ax[i] = addset(ax[i], "Quot.sound") }
    if (dsorry[i]) ax[i] = addset(ax[i], "sorryAx")
    if (dnative[i]) { ax[i] = addset(ax[i], "Lean.ofReduceBool"); ax[i] = addset(ax[i], "Lean.trustCompiler") }
    if (i in dax) ax[i] = addset(ax[i], dax[i])
  }
  # propagate through references (fixpoint)
  changed = 1; rounds = 0
  while (changed && rounds <= nd) {
    changed = 0; rounds++
    for (i = 1; i <= nd; i++) {
      n = split(refs[i], w, " ")
      for (k = 1; k <= n; k++) {
        j = ""
        if (w[k] in byname) j = byname[w[k]]
        else if (qualify(w[k]) in byname) j = byname[qualify(w[k])]
        if (j == "" || j == i) continue
        m = split(ax[j], a, "|")
        for (q = 1; q <= m; q++) {
          before = ax[i]; ax[i] = addset(ax[i], a[q]); if (ax[i] != before) changed = 1
        }
      }
    }
  }
  q1 = (STYLE == "quote") ? "'" : "`"
  # messages in line order
  e = 1
  for (i = 1; i <= nd; i++) {
    while (e <= nerr && errline[e] <= dline[i]) { printerr(e); e++ }
    if (dsorry[i]) printf "%s:%d:%d: warning: declaration uses %ssorry%s\n", FILE, dline[i], dcol[i], q1, q1
  }
  while (e <= nerr) { printerr(e); e++ }
  if (probe) {
    for (i = 1; i <= nd; i++) {
      if (dfull[i] == "") continue
      m = split(ax[i], a, "|")
      if (m == 0) { printf "%s:%d:0: info: '%s' does not depend on any axioms\n", FILE, probeline, dfull[i]; continue }
      lst = ""
      for (q = 1; q <= m; q++) lst = (q == 1 ? a[q] : lst ", " a[q])
      msg = "'" dfull[i] "' depends on axioms: [" lst "]"
      if (length(msg) > 100) {
        lst = ""
        for (q = 1; q <= m; q++) lst = (q == 1 ? a[q] : lst ",\n  " a[q])
        msg = "'" dfull[i] "' depends on axioms: [" lst "]"
      }
      printf "%s:%d:0: info: %s\n", FILE, probeline, msg
    }
    printf "%s:%d:0: info: atp-probe-done %s\n", FILE, probeline, nonce
  }
  exit (nerr > 0 ? 1 : 0)
}

function printerr(k) {
  printf "%s:%d:%d: error: unsolved goals\n⊢ False\n", FILE, errline[k], errcol[k]
}
