# Prints the '|'-separated rows of scripts/gpu/lib.sh as one aligned table.
BEGIN {
    split("what|unit|native|venus|ratio|ratio min..max|status", h, "|")
    for (i = 1; i <= 7; i++) { cell[0, i] = h[i]; w[i] = length(h[i]) }
}
{
    n++
    for (i = 1; i <= 7; i++) { cell[n, i] = $i; if (i < 7 && length($i) > w[i]) w[i] = length($i) }
}
END {
    for (r = 0; r <= n; r++) {
        line = ""
        for (i = 1; i <= 7; i++) {
            v = cell[r, i]
            line = line (i < 7 ? sprintf("%-" w[i] "s  ", v) : v)
        }
        print line
        if (r == 0) { s = ""; for (i = 1; i <= 6; i++) s = s sprintf("%" w[i] + 2 "s", "") ; gsub(/ /, "-", s); print s "------" }
    }
}
