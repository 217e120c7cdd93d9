package lbpool

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidatePools(t *testing.T) {
	tests := []struct {
		name      string
		pools     []Pool
		wantErr   string
		wantPool  int
		wantField string
		wantItem  int
	}{
		{name: "ok", pools: []Pool{mustPool(t, "a", "10.0.0.0/24"), mustPool(t, "b", "10.0.1.0/24", "fd00::/120")}},
		{name: "empty name", pools: []Pool{mustPool(t, "", "10.0.0.0/24")}, wantErr: "needs a name", wantField: "name", wantItem: -1},
		{name: "duplicate", pools: []Pool{mustPool(t, "a", "10.0.0.0/24"), mustPool(t, "a", "10.0.1.0/24")}, wantErr: "duplicate pool name", wantPool: 1, wantField: "name", wantItem: -1},
		{name: "no addresses", pools: []Pool{mustPool(t, "a")}, wantErr: "no addresses", wantField: "addresses", wantItem: -1},
		{name: "overlap between pools", pools: []Pool{mustPool(t, "a", "10.0.0.0/24"), mustPool(t, "b", "10.0.1.0/24", "10.0.0.200 - 10.0.0.210")},
			wantErr: `10.0.0.200 - 10.0.0.210 overlaps 10.0.0.0 - 10.0.0.255 of pool "a"`, wantPool: 1, wantField: "addresses", wantItem: 1},
		{name: "overlap inside pool", pools: []Pool{mustPool(t, "a", "10.0.0.0/24", "10.0.0.5")},
			wantErr: "another entry of the same pool", wantField: "addresses", wantItem: 1},
		{name: "overlap hidden behind a wide range", pools: []Pool{mustPool(t, "a", "10.0.0.0/16", "10.0.1.0/24", "10.0.9.9")},
			wantErr: "overlaps", wantField: "addresses", wantItem: 1},
		{name: "v4 and v6 never overlap", pools: []Pool{mustPool(t, "a", "0.0.0.0/0"), mustPool(t, "b", "::/0")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePools(tt.pools)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *PoolError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidPool) {
				t.Fatalf("error = %v, want a *PoolError wrapping ErrInvalidPool", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			got := []any{pe.Pool, pe.Field, pe.Item}
			if diff := cmp.Diff([]any{tt.wantPool, tt.wantField, tt.wantItem}, got); diff != "" {
				t.Errorf("where (-want +got):\n%s", diff)
			}
		})
	}
}
