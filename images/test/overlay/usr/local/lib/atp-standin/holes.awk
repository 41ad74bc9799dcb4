# Part of the STAND-IN `lake` for tests (see /usr/local/bin/lake). Not Lean.
# Emulates atp's answer checks of definition holes (atp-verify's holes.rs): in a check module
#   import M
#   theorem X : (_root_.NAME) = (ANSWER) := by first | rfl | decide | norm_num
#   theorem X : (_root_.NAME) ≠ (ANSWER) := by first | decide | norm_num
#   - `=` holds iff the body of the `def`/`abbrev` whose name ends like NAME, in the source of
#     an imported module M (ROOT/M.lean, dots as slashes) or earlier in this file, is ANSWER up
#     to whitespace and outer parentheses (syntactic equality: what `rfl` proves at the least);
#   - `≠` holds iff both are decimal numerals and differ (what `decide` proves on ℕ);
#   - otherwise prints `FILE:L:C: error: …` at the proof and exits 1.
# A statement proved `by sorry` is left to lean.awk (a sorry warning).
# Input: one .lean file. Vars: FILE, ROOT (the --root directory, may be empty). busybox awk.

function norm(s,   t) {
  gsub(/[ \t]+/, "", s)
  while (substr(s, 1, 1) == "(" && substr(s, length(s), 1) == ")" && balanced(substr(s, 2, length(s) - 2))) {
    s = substr(s, 2, length(s) - 2)
  }
  return s
}
function balanced(s,   i, d, c) {
  d = 0
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (c == "(") d++
    else if (c == ")") { d--; if (d < 0) return 0 }
  }
  return d == 0
}
function last(n,   k, parts) { k = split(n, parts, "."); return parts[k] }
function numeral(s) { return s ~ /^[0-9]+$/ }

# Record definition bodies of one source line (state in `cur`).
function scan(raw,   head, n, p) {
  if (match(raw, /^(@\[[^]]*\][ \t]*)?((private|protected|noncomputable)[ \t]+)*(def|abbrev|opaque)[ \t]+[^ \t:(]+/)) {
    head = substr(raw, RSTART, RLENGTH)
    n = head; sub(/.*[ \t]/, "", n)
    cur = last(n)
    p = index(raw, ":=")
    body[cur] = (p > 0) ? substr(raw, p + 2) : ""
    return 1
  }
  if (cur != "" && raw ~ /^[ \t]+[^ \t]/ && index(raw, ":=") == 0) { body[cur] = body[cur] " " raw; return 1 }
  if (raw !~ /^[ \t]/) cur = ""
  return 0
}

function load(mod,   path, line, saved) {
  if (ROOT == "") return
  path = mod; gsub(/\./, "/", path); path = ROOT "/" path ".lean"
  saved = cur; cur = ""
  while ((getline line < path) > 0) scan(line)
  close(path)
  cur = saved
}

BEGIN { bad = 0; cur = "" }

{
  raw = $0
  if (raw ~ /^import[ \t]+/) { m = raw; sub(/^import[ \t]+/, "", m); sub(/[ \t].*/, "", m); load(m); next }
  if (scan(raw)) next
  p = index(raw, ": (_root_.")
  if (p == 0) next
  rest = substr(raw, p + 10)
  eq = index(rest, ") = (")
  ne = index(rest, ") ≠ (")
  if (eq > 0) {
    name = substr(rest, 1, eq - 1); ans = substr(rest, eq + 5)
    suffix = ") := by first | rfl | decide | norm_num"
  } else if (ne > 0) {
    name = substr(rest, 1, ne - 1); ans = substr(rest, ne + length(") ≠ ("))
    suffix = ") := by first | decide | norm_num"
  } else next
  if (substr(ans, length(ans) - length(suffix) + 1) != suffix) next
  ans = substr(ans, 1, length(ans) - length(suffix))
  b = norm(body[last(name)]); a = norm(ans)
  ok = (eq > 0) ? (b != "" && b == a) : (numeral(b) && numeral(a) && b != a)
  if (!ok) {
    col = index(raw, "first") - 1
    printf "%s:%d:%d: error: stand-in: %s not proved (body `%s`, answer `%s`)\n", FILE, NR, col, (eq > 0 ? "equality" : "disequality"), b, a
    bad = 1
  }
}

END { exit bad }
