package lab

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestExclusive: while this process has a lab open, another open file
// description (as another process would have) cannot take the lock; once
// every lab is closed it can.
//
// It uses its own lock file: other packages' labs take the real one
// meanwhile, and one could take it between this test's release and its
// last look.
func TestExclusive(t *testing.T) {
	old := lockPath
	lockPath = filepath.Join(t.TempDir(), "lab.lock")
	t.Cleanup(func() { lockPath = old })
	other := func() error {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	r1 := acquire(t)
	r2 := acquire(t) // a second lab in the same process does not wait
	if err := other(); err != syscall.EWOULDBLOCK {
		t.Fatalf("lock taken by another holder while a lab is open: %v", err)
	}
	r1()
	r1() // idempotent
	if err := other(); err != syscall.EWOULDBLOCK {
		t.Fatalf("lock released while a second lab is still open: %v", err)
	}
	r2()
	if err := other(); err != nil {
		t.Fatalf("lock still held after every lab closed: %v", err)
	}
}
