package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// serveEnv makes the test binary the bench's server process, as `uraiden bench
// --serve-phase` makes the uraiden binary.
const serveEnv = "URAIDEN_BENCH_TEST_SERVE_PHASE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(serveEnv); spec != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		err := ServeProcess(ctx, spec, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testServerCommand runs this test binary as the server process.
func testServerCommand(spec string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"="+spec)
	return cmd
}

// checkServerCPU checks that a phase's CPU figures were taken, the server's apart, and that
// neither exceeds what the machine's cores could give over the phase (a wrong unit would).
func checkServerCPU(t *testing.T, name string, elapsed, cpu, server time.Duration, apart bool) {
	t.Helper()
	limit := elapsed*time.Duration(runtime.NumCPU()) + 2*clockTick
	if !apart || cpu <= 0 || server <= 0 || cpu > limit || server > limit {
		t.Errorf("%s: over %s, this process's CPU %s, the server's %s (apart: %v)", name, elapsed, cpu, server, apart)
	}
}

// TestServerProcessSmoke runs every phase but the size phase briefly with each server in a
// process of its own: it checks that they answer, that the server's CPU is read apart
// from this process's and the group commits and Check histogram from the server process,
// that each server process wrote its CPU profile, and that the summary sets them against the
// targets, never how fast.
func TestServerProcessSmoke(t *testing.T) {
	profiles := filepath.Join(t.TempDir(), "cpu")
	rep, err := Run(context.Background(), Config{Streams: 4, Conns: 2, Duration: time.Second, Channels: 8, Proofs: 4000,
		Phases: []string{PhaseDoNothing, PhaseQuotes, PhaseDurable, PhaseNoSync, PhaseRate}, Rates: []Rate{{PerSecond: 1000}},
		Server: ServerProcess, ServerCommand: testServerCommand, ServerCPUProfile: profiles})
	if err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{PhaseDoNothing, PhaseNoSync, "rate-paid-1000"} {
		// A CPU profile is gzipped protobuf.
		if b, err := os.ReadFile(profiles + "." + phase); err != nil || len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("server CPU profile of %s: %d bytes, %v", phase, len(b), err)
		}
	}
	for _, r := range []Result{rep.DoNothing, rep.Quotes, rep.Paid, rep.PaidNoSync} {
		if r.Checks == 0 || r.Errors != 0 {
			t.Errorf("%s: %d checks, %d errors (%s)", r.Name, r.Checks, r.Errors, r.FirstErr)
		}
		checkServerCPU(t, r.Name, r.Elapsed, r.CPU, r.ServerCPU, r.ServerApart)
	}
	for _, r := range []Result{rep.Paid, rep.PaidNoSync} {
		if r.Commits == 0 || r.CommitP50 <= 0 || r.CommitP99 < r.CommitP50 {
			t.Errorf("%s: the server process's commits: %d, p50 %s p99 %s", r.Name, r.Commits, r.CommitP50, r.CommitP99)
		}
	}
	if len(rep.Rates) != 1 || rep.Rates[0].Ledger != LedgerBadger {
		t.Fatalf("rate runs: %+v", rep.Rates)
	}
	for _, r := range []OpenResult{rep.Rates[0].Quotes, rep.Rates[0].Paid} {
		if r.Checks == 0 || r.Errors != 0 || r.ServerChecks == 0 || r.ServerP50 <= 0 || r.ServerP99 < r.ServerP50 {
			t.Errorf("%s: %d checks, %d errors (%s), server histogram %d checks p50 %s p99 %s", r.Name, r.Checks, r.Errors, r.FirstErr,
				r.ServerChecks, r.ServerP50, r.ServerP99)
		}
		checkServerCPU(t, r.Name, r.Elapsed, r.CPU, r.ServerCPU, r.ServerApart)
	}
	if rep.Recovery <= 0 || rep.NoSyncVsDoNothingCPU() <= 0 {
		t.Errorf("recovery %s, no-sync vs. do-nothing CPU %.2f", rep.Recovery, rep.NoSyncVsDoNothingCPU())
	}
	if _, ok := rep.DurableExtraCPU(); !ok {
		t.Error("no durable minus no-sync server CPU")
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"srv cpu/check", "against the targets", "one recovery", "durable - no-sync"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRateEtcdProcessSmoke runs the fixed-rate phase against the etcd store, its members in
// the server process.
func TestRateEtcdProcessSmoke(t *testing.T) {
	rep, err := Run(context.Background(), Config{Streams: 4, Conns: 2, Duration: time.Second, Channels: 8, Proofs: 2000,
		Phases: []string{PhaseRate}, Rates: []Rate{{PerSecond: 500}}, Ledger: LedgerEtcd,
		Server: ServerProcess, ServerCommand: testServerCommand})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rates) != 1 || rep.Rates[0].Ledger != LedgerEtcd {
		t.Fatalf("rate runs: %+v", rep.Rates)
	}
	for _, r := range []OpenResult{rep.Rates[0].Quotes, rep.Rates[0].Paid} {
		if r.Checks == 0 || r.Errors != 0 || r.ServerChecks == 0 {
			t.Errorf("%s: %d checks, %d errors (%s), server histogram %d checks", r.Name, r.Checks, r.Errors, r.FirstErr, r.ServerChecks)
		}
		checkServerCPU(t, r.Name, r.Elapsed, r.CPU, r.ServerCPU, r.ServerApart)
	}
	var out bytes.Buffer
	rep.Print(&out)
	if !strings.Contains(out.String(), "paid (etcd)") || strings.Contains(out.String(), "against the targets") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestRunRefusesAServerProcessItCannotStart(t *testing.T) {
	for _, cfg := range []Config{{Server: "vm"}, {Server: ServerProcess}} {
		cfg.Streams, cfg.Channels = 4, 8
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run accepted server %q without a command", cfg.Server)
		}
	}
}
