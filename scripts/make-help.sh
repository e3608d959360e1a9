#!/usr/bin/env bash
# `make help`: every target of the Makefile with the text after its "##".
#   scripts/make-help.sh Makefile          # print the list
#   scripts/make-help.sh --check Makefile  # fail naming each .PHONY target without a "##" text
set -euo pipefail
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
makefile=${1:-Makefile}
if [ "$check" = 1 ]; then
  phony=$(sed -n 's/^\.PHONY:[[:space:]]*//p' "$makefile" | tr ' ' '\n' | sed '/^$/d' | sort -u)
  documented=$(sed -nE 's/^([A-Za-z0-9_-]+):[^#]*##.*/\1/p' "$makefile" | sort -u)
  missing=$(comm -23 <(printf '%s\n' "$phony") <(printf '%s\n' "$documented"))
  undeclared=$(comm -13 <(printf '%s\n' "$phony") <(printf '%s\n' "$documented"))
  if [ -n "$missing$undeclared" ]; then
    [ -z "$missing" ] || echo "make-help: .PHONY targets without a '## text' in $makefile: $(printf '%s' "$missing" | tr '\n' ' ')" >&2
    [ -z "$undeclared" ] || echo "make-help: documented targets missing from .PHONY in $makefile: $(printf '%s' "$undeclared" | tr '\n' ' ')" >&2
    exit 1
  fi
  echo "make-help: $(printf '%s\n' "$phony" | wc -l) targets, each documented"
  exit 0
fi
echo "usage: make <target> [VAR=value ...]"
sed -nE 's/^([A-Za-z0-9_-]+):[^#]*## (.*)/\1\t\2/p' "$makefile" |
  awk -F '\t' '{ printf "  %-18s %s\n", $1, $2 }'
