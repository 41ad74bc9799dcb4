# Part of the STAND-IN `lake` for tests (see /usr/local/bin/lake). Not Lean.
# Emulates atp's answer checks of definition holes (atp-verify's holes.rs) on the check lines
#   example : (_root_.NAME) = (ANSWER) := by first | rfl | decide | norm_num
#   example : (_root_.NAME) ≠ (ANSWER) := by first | decide | norm_num
# (also after the probe renamed `example` to `noncomputable def _atp_example_K`):
#   - `=` holds iff the body of the `def`/`abbrev` whose name ends like NAME, found earlier in
#     the file, is ANSWER up to whitespace and outer parentheses (syntactic equality: what `rfl`
#     proves at the least);
#   - `≠` holds iff both are decimal numerals and differ (what `decide` proves on ℕ);
#   - otherwise the stand-in prints `FILE:L:C: error: …` at the check line and exits 1.
# Input: one .lean file. Vars: FILE. POSIX/busybox awk only.

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

BEGIN { bad = 0; cur = "" }

{
  raw = $0
  if (match(raw, /^(@\[[^]]*\][ \t]*)?((private|protected|noncomputable)[ \t]+)*(def|abbrev|opaque)[ \t]+[^ \t:(]+/)) {
    head = substr(raw, RSTART, RLENGTH)
    n = head; sub(/.*[ \t]/, "", n)
    if (n !~ /^_atp_example_/) {
      cur = last(n)
      p = index(raw, ":=")
      body[cur] = (p > 0) ? substr(raw, p + 2) : ""
      next
    }
  }
  if (cur != "" && raw ~ /^[ \t]+[^ \t]/ && index(raw, ":=") == 0) { body[cur] = body[cur] " " raw; next }
  if (raw !~ /^[ \t]/) cur = ""
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
