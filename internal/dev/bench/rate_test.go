package bench

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRateSmoke runs the fixed-rate phase alone for 1 s at 200/s: it checks that every
// scheduled request is sent and answered as expected, that the server's histogram saw the
// same requests, and that the percentiles are in order, never how fast.
func TestRateSmoke(t *testing.T) {
	var phases []string
	rep, err := Run(context.Background(), Config{Streams: 4, Conns: 2, Duration: time.Second, Channels: 8, Proofs: 400,
		Phases: []string{PhaseRate}, Rates: []Rate{{PerSecond: 200}},
		OnPhase: func(phase string) func() { phases = append(phases, phase); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	// The names become profile and trace file names: a "/s" in them made those fail.
	if want := []string{"rate-quotes-200", "rate-paid-200"}; !slices.Equal(phases, want) {
		t.Errorf("OnPhase saw %q, want %q", phases, want)
	}
	if rep.Paid.Name != "" || rep.Quotes.Name != "" || len(rep.Rates) != 1 {
		t.Fatalf("phases run: paid %q, quotes %q, %d fixed-rate runs", rep.Paid.Name, rep.Quotes.Name, len(rep.Rates))
	}
	for _, r := range []OpenResult{rep.Rates[0].Quotes, rep.Rates[0].Paid} {
		if r.Scheduled != 200 || r.Checks != r.Scheduled || r.Errors != 0 || r.Short {
			t.Errorf("%s: %d scheduled, %d checks, %d errors (%s), short %v", r.Name, r.Scheduled, r.Checks, r.Errors, r.FirstErr, r.Short)
		}
		if r.P50 <= 0 || r.P50 > r.P90 || r.P90 > r.P99 || r.P99 > r.P999 {
			t.Errorf("%s: percentiles %s %s %s %s", r.Name, r.P50, r.P90, r.P99, r.P999)
		}
		if r.ServerChecks != r.Checks || r.ServerP50 <= 0 || r.ServerP50 > r.ServerP99 {
			t.Errorf("%s: the server's histogram counted %d checks of %d, p50 %s p99 %s", r.Name, r.ServerChecks, r.Checks, r.ServerP50, r.ServerP99)
		}
		if r.Workers <= 0 || r.Late > r.Scheduled || r.Rate() <= 0 {
			t.Errorf("%s: %d workers, %d late, %v/s", r.Name, r.Workers, r.Late, r.Rate())
		}
	}
	if rep.Errors() != 0 {
		t.Errorf("Errors() = %d", rep.Errors())
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"fixed rate, open loop", "p99.9", "server p99", "200/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "\nphase ") {
		t.Errorf("the report has the closed-loop table without its phases:\n%s", out.String())
	}
}

// TestRateCutToProofs checks that a schedule longer than the proofs is cut and says so,
// rather than sending proofs that were already spent.
func TestRateCutToProofs(t *testing.T) {
	rep, err := Run(context.Background(), Config{Streams: 4, Conns: 2, Duration: time.Second, Channels: 8, Proofs: 80,
		Phases: []string{PhaseRate}, Rates: []Rate{{PerSecond: 200}}})
	if err != nil {
		t.Fatal(err)
	}
	q, p := rep.Rates[0].Quotes, rep.Rates[0].Paid
	if q.Short || q.Scheduled != 200 || !p.Short || p.Scheduled != 80 || p.Checks != 80 || p.Errors != 0 {
		t.Errorf("quotes: short %v, %d scheduled; paid: short %v, %d scheduled, %d checks, %d errors (%s)",
			q.Short, q.Scheduled, p.Short, p.Scheduled, p.Checks, p.Errors, p.FirstErr)
	}
}

func TestRateRefusals(t *testing.T) {
	for name, cfg := range map[string]Config{
		"a fraction without the durable phase": {Phases: []string{PhaseRate}, Rates: []Rate{{Of: 0.3}}},
		"the rate phase without a rate":        {Phases: []string{PhaseRate}},
	} {
		cfg.Streams, cfg.Channels, cfg.Duration = 4, 8, time.Second
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run accepted %s", name)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{"1000": {PerSecond: 1000}, "0.3x": {Of: 0.3}, " 2.5 ": {PerSecond: 2.5}} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "0", "-5", "0x", "fast", "1e999", "NaN"} {
		if r, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %+v, want an error", in, r)
		}
	}
}

func TestBucketQuantile(t *testing.T) {
	upper := []float64{0.001, 0.002, 0.004, math.Inf(1)}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	for _, c := range []struct {
		counts []uint64
		q      float64
		want   time.Duration
	}{
		{[]uint64{0, 10, 10, 10}, 0.5, ms(1.5)},    // all in (1, 2] ms: halfway through it
		{[]uint64{10, 10, 20, 20}, 0.75, ms(3)},    // the empty bucket is skipped
		{[]uint64{10, 10, 10, 10}, 0.99, ms(0.99)}, // the first bucket starts at 0
		{[]uint64{0, 0, 0, 10}, 0.5, ms(4)},        // beyond the last bound: that bound
		{[]uint64{0, 0, 0, 0}, 0.5, 0},
	} {
		if got := bucketQuantile(upper, c.counts, c.q); got != c.want {
			t.Errorf("bucketQuantile(%v, %v) = %s, want %s", c.counts, c.q, got, c.want)
		}
	}
}
