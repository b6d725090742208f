#!/usr/bin/env bash
# Checks that the spec citations in the code and docs resolve in this repository (docs/spec/):
#   1. every cited `docs/spec/...` path exists;
#   2. nothing cites `shared/spec/...` (outside this repository: a fresh clone lacks it);
#   3. every "contract §N" / "wire format §N" (also "wire spec §N", "venus-client-contract.md §N",
#      "venus-wire-format.md §N") names a section heading that exists in that document.
# docs/spec/README.md says how citations map to files. Scans tracked and untracked-but-not-ignored
# *.rs, *.md, *.sh, *.toml files outside docs/spec/. Exit status 1 lists every broken citation.
# Usage: scripts/check-spec-citations.sh
set -euo pipefail
cd "$(dirname "$0")/.."

contract=docs/spec/venus-client-contract.md
wire=docs/spec/venus-wire-format.md
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
  '*.rs' '*.md' '*.sh' '*.toml' | grep -v -e '^docs/spec/' -e '^scripts/check-spec-citations.sh$' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
bad=0
fail() { echo "check-spec-citations: $*" >&2; bad=1; }

# 1. Cited docs/spec paths exist.
while IFS=: read -r file line path; do
  [ -e "$path" ] || fail "$file:$line: cites $path, which does not exist"
done < <(grep -noE 'docs/spec/[A-Za-z0-9_.-]+[A-Za-z0-9_-]' "${files[@]}" || true)

# 2. No citation of the shared folder outside the repository.
while IFS=: read -r file line text; do
  fail "$file:$line: cites $text (not in this repository; cite docs/spec/... instead)"
done < <(grep -noE '(\.\./)*shared/spec/[A-Za-z0-9_.-]*' "${files[@]}" || true)

# 3. Section numbers exist: a heading "## N. Title" or "### N.M Title" in the cited document.
has_section() {  # has_section FILE N(.M)*
  grep -qE "^#+ ${2//./\\.}(\\.| )" "$1"
}
check_sections() {  # check_sections DOC REGEX
  local doc=$1 re=$2 file line text n
  while IFS=: read -r file line text; do
    n=${text##*§}
    n=${n%.}
    has_section "$doc" "$n" || fail "$file:$line: \"$text\": no section $n in $doc"
  done < <(grep -noE "$re" "${files[@]}" || true)
}
check_sections "$contract" '([Cc]ontract|venus-client-contract\.md`?) §[0-9]+(\.[0-9]+)*'
check_sections "$wire" '([Ww]ire (format|spec)|venus-wire-format\.md`?) §[0-9]+(\.[0-9]+)*'

if [ "$bad" -ne 0 ]; then
  echo "check-spec-citations: broken citations (see docs/spec/README.md)" >&2
  exit 1
fi
echo "check-spec-citations: ok (${#files[@]} files)"
