#!/usr/bin/env bash
# The console's catalogue: extract the messages from the code and the templates, merge
# them into the zh_CN catalogue (new ones untranslated, gone ones dropped), compile it.
#   tools/i18n.sh            # after changing console wording; then translate the
#                            # empty msgstr in console.po and run it again
# tests/console/test_i18n.py fails while any message is untranslated or the .mo is stale.
set -euo pipefail
cd "$(dirname "$0")/../screener/service/console"
PYBABEL="${PYBABEL:-pybabel}"
POT="$(mktemp --suffix=.pot)"
trap 'rm -f "$POT"' EXIT
"$PYBABEL" extract -F babel.cfg -k N_ -k _ -k gettext -k ngettext:1,2 --no-location \
  --sort-output --project=screener-console -o "$POT" .
"$PYBABEL" update -i "$POT" -d locale -D console -l zh_CN --no-fuzzy-matching --ignore-obsolete
"$PYBABEL" compile -d locale -D console -l zh_CN --statistics
