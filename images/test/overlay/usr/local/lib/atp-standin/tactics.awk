# Part of the STAND-IN `lake` for tests (see /usr/local/bin/lake). Not Lean.
# Emulates whether a closing tactic tried by atp's `tactics` prover solves a goal:
#   - an attempt is `focus (TAC; done)` (tactic position) or `(by TAC)` (term position);
#   - it succeeds iff the declaration holding it has a comment line
#     `-- STANDIN_CLOSES TAC1 TAC2 ...` naming TAC; otherwise the stand-in prints
#     `FILE:L:C: error: unsolved goals` at the attempt (L 1-based, C 0-based) and exits 1.
# Input: one .lean file. Vars: FILE. POSIX/busybox awk only.

BEGIN { nd = 0; cur = 0; na = 0
  declre = "^(@\\[[^]]*\\][ \t]*)?((private|protected|noncomputable|partial|unsafe|nonrec|local|scoped)[ \t]+)*(theorem|lemma|def|abbrev|instance|example|opaque)([ \t]|$)"
}

{
  raw = $0
  if (match(raw, declre)) { nd++; cur = nd }
  else if (raw ~ /^[^ \t-]/) { cur = 0 }
  if (cur > 0 && match(raw, /--[ \t]*STANDIN_CLOSES[ \t]/)) {
    rest = substr(raw, RSTART + RLENGTH)
    closes[cur] = closes[cur] " " rest " "
  }
  line = raw; off = 0
  while (cur > 0 && match(line, /(focus \([A-Za-z_?!.]+; done\)|\(by [A-Za-z_?!.]+\))/)) {
    att = substr(line, RSTART, RLENGTH)
    tac = att
    if (substr(tac, 1, 6) == "focus ") { tac = substr(tac, 8); sub(/; done\)$/, "", tac) }
    else { tac = substr(tac, 5); sub(/\)$/, "", tac) }
    na++; aline[na] = NR; acol[na] = off + RSTART - 1; atac[na] = tac; adecl[na] = cur
    off += RSTART + RLENGTH - 1
    line = substr(line, RSTART + RLENGTH)
  }
}

END {
  bad = 0
  for (i = 1; i <= na; i++) {
    if (index(closes[adecl[i]], " " atac[i] " ") > 0) continue
    printf "%s:%d:%d: error: unsolved goals\n⊢ stand-in goal (no STANDIN_CLOSES %s)\n", FILE, aline[i], acol[i], atac[i]
    bad = 1
  }
  exit bad
}
