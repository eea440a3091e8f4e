#!/bin/sh
# The manual page documents every option that 'dlc --help' lists.
# usage: man.sh DLC MANPAGE
set -eu
dlc=$1 page=$2
text=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page")
missing=0
# options are the words that start with '-' after a blank or a comma
for opt in $("$dlc" --help | grep -o -- '[ ,]--*[A-Za-z][-A-Za-z0-9]*' | tr -d ' ,' | sort -u); do
    if ! printf '%s\n' "$text" | grep -q -- "$opt"; then
        echo "FAIL: $page does not document $opt"
        missing=1
    fi
done
[ $missing = 0 ] && echo "PASS: every option of dlc --help is in $page"
exit $missing
