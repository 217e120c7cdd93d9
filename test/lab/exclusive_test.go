package lab

import (
	"os"
	"syscall"
	"testing"
)

// TestExclusive: while this process has a lab open, another open file
// description (as another process would have) cannot take the lock; once
// every lab is closed it can.
func TestExclusive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip(ErrNotRoot.Error())
	}
	other := func() error {
		f, err := os.OpenFile(LockPath, os.O_RDWR|os.O_CREATE, 0o644)
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
