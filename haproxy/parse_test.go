package haproxy

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const procSample = `#<PID>          <type>          <reloads>       <uptime>        <version>      
28391           master          2 [failed: 1]   0d00h00m11s     2.6.12-1+deb12u4
# workers
28576           worker          1               0d00h00m06s     2.6.12-1+deb12u4
# old workers
28394           worker          2               0d00h00m20s     2.6.12-1+deb12u4
# programs

`

const stateSample = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 be1 1 s1 127.0.0.1 2 0 1 1 4 6 3 4 6 0 0 0 - 9000 - 0 0 - - 0
3 be1 2 s2 127.0.0.1 0 5 1 1 4 1 0 0 0 0 0 0 - 1 - 0 0 - - 0

`

func TestParseProc(t *testing.T) {
	got, err := ParseProc(procSample)
	if err != nil {
		t.Fatal(err)
	}
	want := Proc{MasterPID: 28391, Reloads: 2, Failed: 1, Workers: []int{28576}, OldWorkers: []int{28394}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParseProc (-want +got):\n%s", d)
	}
}

func TestParseServersState(t *testing.T) {
	got, err := ParseServersState(stateSample)
	if err != nil {
		t.Fatal(err)
	}
	want := []ServerState{
		{Backend: "be1", Name: "s1", Addr: netip.MustParseAddrPort("127.0.0.1:9000"), OpState: 2},
		{Backend: "be1", Name: "s2", Addr: netip.MustParseAddrPort("127.0.0.1:1"), AdminState: 5},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("ParseServersState (-want +got):\n%s", d)
	}
	for _, bad := range []string{"", "2\n", "1\n3 be1\n", "1\n# be_name srv_name srv_addr srv_port srv_op_state srv_admin_state\nb s x 1 2 0\n"} {
		if _, err := ParseServersState(bad); err == nil {
			t.Errorf("ParseServersState(%q) = nil error", bad)
		}
	}
}

func FuzzParseServersState(f *testing.F) {
	f.Add(stateSample)
	f.Add("1\n# be_name\n")
	f.Fuzz(func(t *testing.T, s string) {
		states, err := ParseServersState(s)
		if err == nil {
			for _, st := range states {
				if !st.Addr.IsValid() {
					t.Fatalf("invalid addr accepted from %q", s)
				}
			}
		}
	})
}

func FuzzParseProc(f *testing.F) {
	f.Add(procSample)
	f.Add("1 master x\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProc(s)
		if err == nil && p.MasterPID == 0 {
			t.Fatalf("no master pid but no error for %q", s)
		}
	})
}
