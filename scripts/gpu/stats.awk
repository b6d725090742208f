# Input: lines "native<TAB>venus" (one per round, "nan" for a failed run). Output one line:
# median native | median venus | median ratio | min..max ratio | median venus-native | failures.
# dir=lo (latency) or hi (throughput): only used by the caller; the ratio is venus/native.
function median(a, n,   i, j, t) {
    if (n == 0) return "-"
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    if ($1 == "nan") bad++; else nat[++nn] = $1
    if ($2 == "nan") bad++; else ven[++nv] = $2
    if ($1 != "nan" && $2 != "nan" && $1 > 0) {
        r = $2 / $1; rat[++nr] = r; d = $2 - $1; dif[++nd] = d
        if (nr == 1 || r < lo) lo = r
        if (nr == 1 || r > hi) hi = r
    }
}
END {
    m1 = median(nat, nn); m2 = median(ven, nv); m3 = median(rat, nr); m4 = median(dif, nd)
    printf "%s|%s|%s|%s|%s|%d\n", fmt(m1), fmt(m2), (nr ? sprintf("%.3f", m3) : "-"), (nr ? sprintf("%.3f..%.3f", lo, hi) : "-"), (nd ? sprintf("%+.1f", m4) : "-"), bad
}
function fmt(v) { return v == "-" ? "failed" : sprintf("%.3f", v) }
