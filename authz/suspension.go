package authz

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// suspensionSummaryEvery is how often a suspension that lasts is summed up in the log.
const suspensionSummaryEvery = 30 * time.Second

// suspensionLog reports payments suspended as a whole (502 while the chain backend is
// away or a dispute cannot be paid for, 503 while the ledger is unusable) as a state
// rather than a line per refused request, which came to thousands of WARN lines a second
// under load: the transition into it at WARN with the reason, a summary of the refusals at
// most every interval while it lasts (with the next refusal), the recovery at INFO with
// the total. Each refusal is still logged at DEBUG.
type suspensionLog struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	on atomic.Bool // read without the lock by every decision that is not a suspension
	// epoch counts the suspensions begun: a decision that began before the current one (it
	// passed the checks just before they failed) proves nothing about now.
	epoch atomic.Uint64

	mu          sync.Mutex
	status      int
	reason      string
	since       time.Time
	lastSummary time.Time
	refused     uint64 // since the last summary
	total       uint64 // since the suspension began
}

func newSuspensionLog(log *slog.Logger) *suspensionLog {
	return &suspensionLog{log: log, interval: suspensionSummaryEvery, now: time.Now}
}

// observe is told every decision, and the epoch when it began.
func (l *suspensionLog) observe(ctx context.Context, d *Decision, began uint64) {
	if d.suspended {
		l.refuse(ctx, d)
		return
	}
	// A paid route answered by anything but a server error got past the ledger and chain
	// checks: payments are back. A free route says nothing, as it skips those checks.
	if l.on.Load() && d.Price != nil && d.Price.Sign() > 0 && d.Status < 500 {
		l.resume(ctx, began)
	}
}

func (l *suspensionLog) refuse(ctx context.Context, d *Decision) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.on.Load() || l.status != d.Status {
		if l.on.Load() {
			l.summary(ctx, now, "payments still suspended, now for another reason")
		}
		l.on.Store(true)
		l.epoch.Add(1)
		l.status, l.reason, l.since, l.lastSummary = d.Status, d.Message, now, now
		l.refused, l.total = 0, 1 // this line reports the first
		l.log.LogAttrs(ctx, slog.LevelWarn, "payments suspended: paid requests are refused until it is over",
			slog.Int("status", d.Status), slog.String("reason", d.Message))
		return
	}
	l.reason = d.Message
	l.refused++
	l.total++
	if now.Sub(l.lastSummary) >= l.interval {
		l.summary(ctx, now, "payments still suspended")
	}
}

// summary logs the refusals since the last one; the caller holds mu.
func (l *suspensionLog) summary(ctx context.Context, now time.Time, msg string) {
	l.log.LogAttrs(ctx, slog.LevelWarn, msg,
		slog.Int("status", l.status), slog.Uint64("refused", l.refused),
		slog.Duration("over", now.Sub(l.lastSummary).Round(time.Millisecond)),
		slog.Duration("suspended_for", now.Sub(l.since).Round(time.Millisecond)),
		slog.String("reason", l.reason))
	l.refused, l.lastSummary = 0, now
}

func (l *suspensionLog) resume(ctx context.Context, began uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.on.Load() || began != l.epoch.Load() {
		return
	}
	l.on.Store(false)
	now := l.now()
	l.log.LogAttrs(ctx, slog.LevelInfo, "payments resumed",
		slog.Int("status_while_suspended", l.status), slog.Uint64("refused", l.total),
		slog.Duration("suspended_for", now.Sub(l.since).Round(time.Millisecond)),
		slog.String("last_reason", l.reason))
}
