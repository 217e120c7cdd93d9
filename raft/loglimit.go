package raft

import (
	"sync"
	"time"
)

// logEvery is how often one rate-limited log line may repeat: a peer that
// misbehaves on every renewal (every leaseDuration/4, 50 ms by default)
// is reported about once a minute instead of 1,200 times.
const logEvery = time.Minute

// logLimiterCap bounds how many keys a logLimiter remembers, so peers that
// invent a new claimed name per request cannot grow it without end; when it
// is full, keys older than logEvery are forgotten, and if none are, new
// keys are not logged until some are.
const logLimiterCap = 1024

// logLimiter lets one log line per key through every logEvery. The zero
// value is ready to use and it is safe for concurrent use.
type logLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// allow reports whether a line for key may be logged at now, and if so
// remembers that it was.
func (l *logLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < logEvery {
		return false
	}
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	if _, ok := l.last[key]; !ok && len(l.last) >= logLimiterCap {
		for k, t := range l.last {
			if now.Sub(t) >= logEvery {
				delete(l.last, k)
			}
		}
		if len(l.last) >= logLimiterCap {
			return false
		}
	}
	l.last[key] = now
	return true
}
