# test-summary.awk: from `go test` output (without -v, so only failing
# tests print), keep what says why each test failed: the --- FAIL lines and
# each t.Log/t.Error line with up to 4 of its continuation lines. The log
# dumps that tests attach on failure (apiserver and edged log tails from
# kubetest.go and lab.go) are left out: they are in the full output above.
# Used by .ci/run so that the end of a failed run names the failures.
/^[ \t]*--- FAIL/ { print; cont = 0; next }
/^(FAIL|ok|panic:)/ { if ($0 !~ /^ok/) print; cont = 0; next }
match($0, /^[ \t]+[A-Za-z0-9_]+\.go:[0-9]+: /) {
	dump = ($0 ~ /^[ \t]+(kubetest|lab)\.go:[0-9]+: /)
	if (!dump) print
	cont = dump ? 0 : 4
	next
}
cont > 0 { print; cont--; next }
