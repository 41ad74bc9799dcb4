# Part of the STAND-IN `atp-check` for tests (see /usr/local/bin/atp-check). Not atp's checker.
# Input lines: SIDE<TAB>MODULE<TAB>(import<TAB>MOD | decl<TAB>KIND<TAB>NAME<TAB>OWN<TAB>FLAGS<TAB>REFS<TAB>SIG<TAB>VALUE)
# SIDE: C (candidate) or O (original). POSIX/busybox awk only.

function js(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }

function kindof(k) { return (k == "lemma" ? "theorem" : k) }

function addset(set, x) {
  if (x == "" || x == "-") return set
  if (index("|" set "|", "|" x "|") > 0) return set
  return (set == "" ? x : set "|" x)
}

# resolve a reference token to a candidate declaration (full name, or a unique short name)
function resolve(r,    k) {
  if (r in cfull) return r
  if (r in cshort) return cshort[r]
  return ""
}

function axioms_of(n,    set, m, a, k, rs, j, d) {
  if (n in memo) return memo[n]
  if (n in busy) return ""
  busy[n] = 1
  set = ""
  m = split(cown[n], a, "|")
  for (k = 1; k <= m; k++) set = addset(set, a[k])
  m = split(crefs[n], rs, " ")
  for (k = 1; k <= m; k++) {
    d = resolve(rs[k])
    if (d == "" || d == n) continue
    j = split(axioms_of(d), a, "|")
    for (q = 1; q <= j; q++) set = addset(set, a[q])
  }
  delete busy[n]
  memo[n] = set
  return set
}

{
  side = $1; mod = $2
  if ($3 == "module") {
    if (side == "C" && !(mod in seenmod)) { seenmod[mod] = 1; nmods++; mods[nmods] = mod; count[mod] = 0 }
    next
  }
  if ($3 == "import") {
    if (side == "C") cimp[mod "|" $4] = 1
    else { no++; oimp_mod[no] = mod; oimp[no] = $4 }
    next
  }
  kind = kindof($4); name = $5
  if (side == "C") {
    nc++; cname[nc] = name; cmod[nc] = mod
    cfull[name] = nc; ckind[name] = kind; cown[name] = $6; crefs[name] = ($8 == "-" ? "" : $8)
    csig[name] = $9; cval[name] = $10; cmodof[name] = mod
    short = name; sub(/^.*\./, "", short)
    if (short in cshort && cshort[short] != name) cshort[short] = "" ; else cshort[short] = name
    if ($7 == "kernel_reject" && !(mod in reject)) reject[mod] = name
    count[mod]++
  } else {
    nd++; oname[nd] = name; omod[nd] = mod; okind[nd] = kind; oown[nd] = $6; osig[nd] = $9; oval[nd] = $10
  }
}

END {
  print "{\"t\":\"hello\",\"protocol\":1,\"lean\":\"4.28.0-standin\"}"
  for (i = 1; i <= nmods; i++) {
    m = mods[i]
    if (m in reject) {
      printf "{\"t\":\"kernel\",\"module\":%s,\"decl\":%s,\"error\":%s}\n", js(m), js(reject[m]), js("(kernel) declaration type mismatch (stand-in)")
      continue
    }
    printf "{\"t\":\"module\",\"module\":%s,\"constants\":%d}\n", js(m), count[m]
    for (k = 1; k <= nc; k++) {
      if (cmod[k] != m) continue
      n = cname[k]; m2 = split(axioms_of(n), a, "|")
      lst = ""
      for (q = 1; q <= m2; q++) lst = lst (q > 1 ? "," : "") js(a[q])
      printf "{\"t\":\"axioms\",\"module\":%s,\"decl\":%s,\"axioms\":[%s]}\n", js(m), js(n), lst
    }
  }
  for (k = 1; k <= no; k++) {
    if (!((oimp_mod[k] "|" oimp[k]) in cimp))
      printf "{\"t\":\"import\",\"module\":%s,\"missing\":%s}\n", js(oimp_mod[k]), js(oimp[k])
  }
  nob = 0
  for (i = 1; i <= nd; i++) {
    n = oname[i]
    if (n ~ /(^|\.)_atp_example_[0-9]+$/) continue
    obligation = (okind[i] == "theorem" || index("|" oown[i] "|", "|sorryAx|") > 0)
    if (!(n in cfull)) st = "missing"
    else if (ckind[n] != okind[i]) st = "kind_mismatch"
    else if (csig[n] != osig[i]) st = "type_mismatch"
    else if (!obligation && cval[n] != oval[i]) st = "value_mismatch"
    else st = "ok"
    nob++
    printf "{\"t\":\"obligation\",\"module\":%s,\"decl\":%s,\"kind\":%s,\"status\":%s}\n", js(omod[i]), js(n), js(okind[i]), js(st)
  }
  # examples, in order, per module
  for (i = 1; i <= nd; i++) {
    n = oname[i]
    if (n !~ /(^|\.)_atp_example_[0-9]+$/) continue
    m = omod[i]
    if (!(m in nextex)) nextex[m] = 1
    st = "missing"
    for (k = nextex[m]; k <= nc; k++) {
      if (cmod[k] != m || cname[k] !~ /(^|\.)_atp_example_[0-9]+$/) continue
      if (csig[cname[k]] == osig[i]) { st = "ok"; nextex[m] = k + 1; break }
    }
    nob++
    printf "{\"t\":\"obligation\",\"module\":%s,\"decl\":%s,\"kind\":\"example\",\"status\":%s}\n", js(m), js(n), js(st)
  }
  printf "{\"t\":\"done\",\"modules\":%d,\"obligations\":%d}\n", NCAND, nob
}
