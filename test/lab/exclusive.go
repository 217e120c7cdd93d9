package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/wait"
)

// LockPath is the machine-wide lock that makes labs of different test
// processes take turns. `go test ./...` runs packages in parallel; labs
// measure gaps of tens of milliseconds (failover, rolling restarts, the
// install's probes), and two labs sharing the CPU make each other's
// numbers and deadlines lie. Within one process labs may overlap (the
// process decides); across processes one holds the machine at a time.
const LockPath = "/run/lock/edged-lab.lock"

// lockPath is the lock acquire takes: LockPath, or a test's own file.
var lockPath = LockPath

// lockWait bounds the wait for other processes' labs: just under the
// suite's per-package timeout (TESTFLAGS in the Makefile), since a package
// may wait for every other lab package in turn.
const lockWait = 24 * time.Minute

var exclusive struct {
	mu   sync.Mutex
	refs int
	f    *os.File
}

// acquire takes the machine-wide lab lock for this process (once, however
// many labs it opens) and returns its release. It fails the test when
// another process holds the lock for longer than lockWait.
func acquire(t testing.TB) (release func()) {
	t.Helper()
	exclusive.mu.Lock()
	defer exclusive.mu.Unlock()
	if exclusive.refs == 0 {
		f, err := lockFile(t)
		if err != nil {
			t.Fatal(err)
		}
		exclusive.f = f
	}
	exclusive.refs++
	var once sync.Once
	return func() {
		once.Do(func() {
			exclusive.mu.Lock()
			defer exclusive.mu.Unlock()
			if exclusive.refs--; exclusive.refs == 0 {
				exclusive.f.Close() // releases the flock
				exclusive.f = nil
			}
		})
	}
}

// lockFile opens lockPath and flocks it, polling (flock has no bounded
// blocking form) so that the wait is bounded and logged.
func lockFile(t testing.TB) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return nil, fmt.Errorf("lab lock: %w", err)
	}
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab lock: %w", err)
	}
	start, logged := time.Now(), false
	var lockErr error
	err = wait.UntilEvery(lockWait, 100*time.Millisecond, "the lab lock "+lockPath+" (another test process's lab)", func() (bool, string) {
		lockErr = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if lockErr == syscall.EWOULDBLOCK {
			if !logged {
				t.Logf("lab: waiting for another test process's lab (%s)", lockPath)
				logged = true
			}
			return false, "held by another process"
		}
		return true, ""
	})
	if err == nil && lockErr != nil {
		err = fmt.Errorf("lab lock %s: %w", lockPath, lockErr)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if logged {
		t.Logf("lab: got %s after %v", lockPath, time.Since(start).Round(time.Millisecond))
	}
	return f, nil
}
