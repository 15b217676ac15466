#!/usr/bin/env bash
# End-to-end checks of the cairn binary: usage errors, help, version.
set -u
CAIRN="$1"
fail=0
check() {  # check NAME EXPECTED_RC COMMAND...
  local name="$1" want="$2"; shift 2
  "$@" >/tmp/cairn_cli_test.out 2>&1
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want"; cat /tmp/cairn_cli_test.out; fail=1
  else
    echo "ok   $name"
  fi
}
check version 0 "$CAIRN" --version
grep -q '^cairn [0-9]' /tmp/cairn_cli_test.out || { echo "FAIL version text"; fail=1; }
check help 0 "$CAIRN" --help
check no_subcommand 2 "$CAIRN"
check unknown_subcommand 2 "$CAIRN" frobnicate
grep -q '^cairn: ' /tmp/cairn_cli_test.out || { echo "FAIL one-line reason"; fail=1; }
[ "$(wc -l </tmp/cairn_cli_test.out)" -eq 1 ] || { echo "FAIL reason is not one line"; fail=1; }
for sub in demo sketch bench; do check "help_$sub" 0 "$CAIRN" "$sub" --help; done
exit $fail
