package authz

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingHandler counts log lines by level and message.
type countingHandler struct {
	mu    sync.Mutex
	lines map[slog.Level][]string
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	h.lines[r.Level] = append(h.lines[r.Level], line)
	return nil
}

func (h *countingHandler) count(level slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines[level])
}

func (h *countingHandler) take(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.lines[level]
	h.lines[level] = nil
	return out
}

// switchableChain is down while down holds.
type switchableChain struct{ down atomic.Bool }

func (c *switchableChain) Healthy() error {
	if c.down.Load() {
		return errors.New("chain backend: dial tcp 127.0.0.1:8545: connection refused")
	}
	return nil
}

func checkStatus(t *testing.T, s *Service, path string) int {
	t.Helper()
	resp, err := s.Check(context.Background(), EnvoyCheckRequest(httptest.NewRequest("GET", path, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}

// Issue 15.4: while the node was away every 502 was logged at WARN (21,125 lines, 6.1 MB
// in 8 s). Now the suspension is one WARN line with its reason, and its end one INFO line
// with the count, from 8 goroutines checking 20,000 paid requests.
func TestSuspensionIsLoggedOnceNotPerRequest(t *testing.T) {
	h := &countingHandler{lines: map[slog.Level][]string{}}
	c := &switchableChain{}
	s := quoteService(t, c, slog.New(h))
	// No summary falls due however slowly a busy machine runs the requests: the summaries
	// have a test of their own, on a fake clock.
	s.suspended.interval = time.Hour
	if got := checkStatus(t, s, "/echodyn/a"); got != 402 {
		t.Fatalf("healthy: %d, want 402", got)
	}
	c.down.Store(true)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 2500 {
				if checkStatus(t, s, "/echodyn/a") == 502 {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if refused.Load() != 20000 {
		t.Fatalf("%d of 20000 refused with 502", refused.Load())
	}
	// A free route skips the chain check: it says nothing about the recovery.
	c.down.Store(false)
	if got := checkStatus(t, s, "/free/x"); got != 0 {
		t.Fatalf("free route: %d", got)
	}
	if n := h.count(slog.LevelInfo); n != 0 {
		t.Errorf("recovery logged after a free request: %v", h.take(slog.LevelInfo))
	}
	if got := checkStatus(t, s, "/echodyn/a"); got != 402 {
		t.Fatalf("after recovery: %d, want 402", got)
	}
	warn, info := h.take(slog.LevelWarn), h.take(slog.LevelInfo)
	if len(warn) != 1 || !strings.Contains(warn[0], "payments suspended") || !strings.Contains(warn[0], "connection refused") || !strings.Contains(warn[0], "status=502") {
		t.Errorf("WARN lines: %d, want 1 naming the reason: %.500q", len(warn), warn)
	}
	if len(info) != 1 || !strings.Contains(info[0], "payments resumed") || !strings.Contains(info[0], "refused=20000") {
		t.Errorf("INFO lines: %q, want one recovery with the count", info)
	}
	if n := h.count(slog.LevelError); n != 0 {
		t.Errorf("%d ERROR lines", n)
	}
	if n := h.count(slog.LevelDebug); n < 20000 {
		t.Errorf("%d DEBUG lines, want every refusal there", n)
	}
}

// A suspension that lasts is summed up every interval, with the refusals since the last
// summary.
func TestSuspensionSummaries(t *testing.T) {
	h := &countingHandler{lines: map[slog.Level][]string{}}
	c := &switchableChain{}
	s := quoteService(t, c, slog.New(h))
	now := time.Unix(1_700_000_000, 0)
	s.suspended.now = func() time.Time { return now }
	c.down.Store(true)
	for range 1000 { // 1,000 refusals over 100 s
		checkStatus(t, s, "/echodyn/a")
		now = now.Add(100 * time.Millisecond)
	}
	warn := h.take(slog.LevelWarn)
	// The transition, then a summary at 30, 60 and 90 s.
	if len(warn) != 4 {
		t.Fatalf("WARN lines over 100 s: %d, want 4: %q", len(warn), warn)
	}
	for _, line := range warn[1:] {
		if !strings.Contains(line, "payments still suspended") || !strings.Contains(line, "refused=300") {
			t.Errorf("summary %q, want 300 refusals each", line)
		}
	}
	c.down.Store(false)
	checkStatus(t, s, "/echodyn/a")
	if info := h.take(slog.LevelInfo); len(info) != 1 || !strings.Contains(info[0], "refused=1000") || !strings.Contains(info[0], "suspended_for=1m40s") {
		t.Errorf("recovery: %q", info)
	}
}

// A paid request that passed the checks just before a suspension began, and finishes after
// it, does not end it: the log would flap between suspended and resumed.
func TestSuspensionIgnoresDecisionsBegunBefore(t *testing.T) {
	h := &countingHandler{lines: map[slog.Level][]string{}}
	l := newSuspensionLog(slog.New(h))
	ctx := context.Background()
	before := l.epoch.Load()
	l.observe(ctx, &Decision{Status: 502, suspended: true, Message: "node down"}, before)
	paid := &Decision{Status: 200, Price: big.NewInt(5)}
	l.observe(ctx, paid, before)
	if info := h.take(slog.LevelInfo); len(info) != 0 {
		t.Errorf("a decision begun before the suspension resumed it: %q", info)
	}
	l.observe(ctx, paid, l.epoch.Load())
	if info := h.take(slog.LevelInfo); len(info) != 1 {
		t.Errorf("a decision begun during the suspension: %q, want it resumed", info)
	}
}
