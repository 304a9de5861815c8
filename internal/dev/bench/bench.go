// Package bench measures the ext_authz Check path over real gRPC: paid checks against a
// durable ledger, 402 quotes, a do-nothing ext_authz server as the ceiling, and paid checks
// against a ledger that never syncs, all in one run on the same machine.
//
// Channels are created directly in a fresh ledger (Created events at a confirmed height)
// and the chain's health is a stub that is always healthy: the chain watcher is not part of
// the measurement. Every proof is signed before the clock starts: signing is the client's
// cost, not the server's.
package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"

	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/internal/checkcodec"
	"github.com/uraiden/uraiden/internal/metrics"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

// Price is what one paid request costs in the bench's price table.
const Price = 1

// PaidPath is the priced route the load uses.
const PaidPath = "/paid/item"

const priceTable = `
default_price: 0
rules:
  - name: paid
    path: "/paid/.*"
    price: 1
`

// Config is one bench run.
type Config struct {
	Streams  int           // concurrent Check streams (default 50)
	Conns    int           // gRPC client connections the streams share (default 4)
	Duration time.Duration // per phase (default 10s)
	// Warmup is how long each phase runs before its clock starts (none when zero):
	// connections, caches and the servers' first reads of every channel are not what a phase
	// measures.
	Warmup   time.Duration
	Channels int // funded channels (default 1000)
	// Proofs is how many distinct proofs to sign for each paid phase; 0 signs enough for
	// 30,000 checks/s over Warmup and Duration. A phase that uses them all stops early and says so.
	Proofs int
	// Phases selects the phases to run, by PhaseNames; empty runs them all.
	Phases []string
	// LedgerChannels, when above Channels, adds the ledger-size phase: the durable paid load
	// against a server over a ledger of Channels channels, then over one of LedgerChannels
	// (the extra channels each paid once, then left alone), with the server's start time,
	// resident memory and /api/1/stats latency.
	LedgerChannels int
	// ServerCommand starts a phase's server in a process of its own: the ledger-size phase's
	// whenever it is set (nil runs them in this one, and the RSS figures are then the whole
	// process's), the other phases' with Server ServerProcess.
	ServerCommand ServerCommand
	// Server is where the phases other than the size phase serve: ServerInProcess (the
	// default) or ServerProcess, which reports the server's CPU time apart.
	Server string
	// Progress, when set, is told what the run is doing.
	Progress io.Writer
	// OnPhase, when set, is called as each phase's clock starts; the function it returns,
	// if any, as it stops: the hook for a CPU profile per phase.
	OnPhase func(phase string) (stop func())
	// ServerCPUProfile, with Server ServerProcess, writes a CPU profile of each phase's server
	// process over the phase's measured window to ServerCPUProfile.<phase>.
	ServerCPUProfile string
	// Ledger is the store the durable paid phase runs against: LedgerBadger (the default),
	// LedgerEtcd (a cluster of three members in this process) or LedgerBoth, one after the
	// other in the same run.
	Ledger string
	// Rates adds the fixed-rate phase (PhaseRate): quotes and paid durable checks sent open
	// loop at each of these offered rates, on a fresh ledger each.
	Rates []Rate
	// Codec is the gRPC codec of the in-process servers: CodecUraiden (the default, as uraiden
	// serves), CodecStandard (gRPC's proto codec), or CodecBoth, which runs the no-sync paid
	// phase with each, standard first, for their CPU per check side by side.
	Codec string
	// NoRequestID leaves x-request-id out of the paid phases' requests, which Envoy sets on
	// every request: without it (and without an Idempotency-Key) a payment remembers no retry
	// (docs/protocol.md §8), so two runs tell what remembering them costs.
	NoRequestID bool
}

// Codecs for Config.Codec.
const (
	CodecUraiden  = "uraiden"
	CodecStandard = "standard"
	CodecBoth     = "both"
)

// Codecs are Config.Codec's values.
var Codecs = []string{CodecUraiden, CodecStandard, CodecBoth}

// codecOptions are a bench server's gRPC options, uraiden's codec or the standard one, with
// the stream workers uraiden serves with.
func codecOptions(uraiden bool) []grpc.ServerOption {
	opts := []grpc.ServerOption{checkcodec.StreamWorkers()}
	if uraiden {
		opts = append(opts, checkcodec.ServerOption())
	}
	return opts
}

// Stores for Config.Ledger.
const (
	LedgerBadger = "badger"
	LedgerEtcd   = "etcd"
	LedgerBoth   = "both"
)

// Ledgers are Config.Ledger's values.
var Ledgers = []string{LedgerBadger, LedgerEtcd, LedgerBoth}

// phaseStarted runs what starts with a phase's clock: OnPhase, and the server process's CPU
// profile. The function it returns, if any, stops them.
func (c *Config) phaseStarted(ctx context.Context, phase string, srv *phaseServer) (stop func()) {
	var stops []func()
	if c.OnPhase != nil {
		stops = append(stops, c.OnPhase(phase))
	}
	if c.ServerCPUProfile != "" {
		stops = append(stops, srv.profileCPU(ctx, c.ServerCPUProfile+"."+phase, c.Progress))
	}
	return func() {
		for _, f := range stops {
			if f != nil {
				f()
			}
		}
	}
}

func (c *Config) badger() bool { return c.Ledger != LedgerEtcd }
func (c *Config) etcd() bool   { return c.Ledger == LedgerEtcd || c.Ledger == LedgerBoth }

// Phase names, for Config.Phases and Config.OnPhase.
const (
	PhaseDoNothing = "do-nothing"
	PhaseQuotes    = "quotes"
	PhaseDurable   = "durable"
	// PhaseDurableEtcd is the durable phase against the etcd store: selected by PhaseDurable
	// and Config.Ledger, named apart for OnPhase.
	PhaseDurableEtcd = "durable-etcd"
	PhaseNoSync      = "nosync"
	PhaseSize        = "size"
	// PhaseRate runs only with Config.Rates; OnPhase sees it as rate-quotes-<rate> and
	// rate-paid-<rate> (rate-etcd-quotes-<rate> and rate-etcd-paid-<rate> on the etcd store),
	// the rate as 1000 or 0.3x (no slash: the names become file names).
	PhaseRate = "rate"
)

// PhaseNames are the phases in the order they run; PhaseSize runs only with LedgerChannels.
var PhaseNames = []string{PhaseDoNothing, PhaseQuotes, PhaseDurable, PhaseNoSync, PhaseRate, PhaseSize}

func (c *Config) runs(phase string) bool {
	if phase == PhaseSize && c.LedgerChannels <= c.Channels {
		return false
	}
	if phase == PhaseRate && len(c.Rates) == 0 {
		return false
	}
	return len(c.Phases) == 0 || slices.Contains(c.Phases, phase)
}

func (c *Config) defaults() {
	if c.Streams <= 0 {
		c.Streams = 50
	}
	if c.Conns <= 0 {
		c.Conns = 4
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Channels <= 0 {
		c.Channels = 1000
	}
	c.Warmup = max(c.Warmup, 0)
	if c.Proofs <= 0 {
		c.Proofs = int(30000 * (c.Duration + c.Warmup).Seconds())
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Ledger == "" {
		c.Ledger = LedgerBadger
	}
	if c.Codec == "" {
		c.Codec = CodecUraiden
	}
	if c.Server == "" {
		c.Server = ServerInProcess
	}
}

// command is what starts the servers of the phases other than the size phase: nil in process.
func (c *Config) command() ServerCommand {
	if c.Server == ServerProcess {
		return c.ServerCommand
	}
	return nil
}

// Result is one phase's measurement.
type Result struct {
	Name      string
	Checks    int // answered as expected
	Errors    int // gRPC errors or unexpected answers
	FirstErr  string
	Elapsed   time.Duration
	P50       time.Duration
	P90       time.Duration
	P99       time.Duration
	Exhausted bool // the phase ran out of proofs before Duration
	// Commits are the ledger's group commits during the phase, when the server ran in
	// process: how many, how many writes each held on average, how long they took.
	Commits              int
	WritesPerCommit      float64
	CommitP50, CommitP99 time.Duration
	// CPU is the CPU time the bench process used during the phase: the load generator's and,
	// when the server runs in process, the server's. Unlike the rate, it hardly moves with
	// other jobs on the machine.
	CPU time.Duration
	// ServerCPU is the server process's CPU time during the phase, when ServerApart: the
	// server ran in a process of its own (with the etcd store, its members too).
	ServerCPU   time.Duration
	ServerApart bool
}

// CPUPerCheck is the process CPU time per answered check.
func (r Result) CPUPerCheck() time.Duration { return perCheck(r.CPU, r.Checks) }

// ServerCPUPerCheck is the server process's CPU time per answered check (0 in process).
func (r Result) ServerCPUPerCheck() time.Duration { return perCheck(r.ServerCPU, r.Checks) }

// totalCPUPerCheck is the CPU time per check of the load and the server, wherever it ran.
func (r Result) totalCPUPerCheck() time.Duration { return perCheck(r.CPU+r.ServerCPU, r.Checks) }

func perCheck(cpu time.Duration, checks int) time.Duration {
	if checks == 0 {
		return 0
	}
	return cpu / time.Duration(checks)
}

// Rate is the checks per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Checks) / r.Elapsed.Seconds()
}

// Report is a whole run.
type Report struct {
	Config     Config
	DoNothing  Result
	Quotes     Result
	Paid       Result // durable ledger
	PaidNoSync Result
	// PaidNoSyncStandard is the no-sync phase again with gRPC's proto codec (Codec both).
	PaidNoSyncStandard Result
	// PaidEtcd is the durable paid phase against the etcd store (three members).
	PaidEtcd Result
	// Sizes are the ledger-size phase's runs, small ledger first.
	Sizes []SizeRun
	// Rates are the fixed-rate phase's runs, in Config.Rates's order, each on Badger and then
	// etcd as Config.Ledger says.
	Rates []RateRun
	// Recovery is the CPU time of one balance proof's signer recovery, measured in this run
	// after the phases, for the CPU targets.
	Recovery time.Duration
}

// Ratios of the run.
func (r *Report) PaidVsDoNothing() float64   { return ratio(r.Paid.Rate(), r.DoNothing.Rate()) }
func (r *Report) QuotesVsDoNothing() float64 { return ratio(r.Quotes.Rate(), r.DoNothing.Rate()) }
func (r *Report) DurableVsNoSync() float64   { return ratio(r.Paid.Rate(), r.PaidNoSync.Rate()) }
func (r *Report) EtcdVsBadger() float64      { return ratio(r.PaidEtcd.Rate(), r.Paid.Rate()) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Errors is the sum of errors over all phases.
func (r *Report) Errors() int {
	n := r.DoNothing.Errors + r.Quotes.Errors + r.Paid.Errors + r.PaidEtcd.Errors + r.PaidNoSync.Errors + r.PaidNoSyncStandard.Errors
	for _, run := range r.Rates {
		n += run.Quotes.Errors + run.Paid.Errors
	}
	return n
}

// Print writes the report as a table with the ratios, for the phases that ran.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%d streams over %d connections, %s per phase, %d channels, GOMAXPROCS %d\n",
		r.Config.Streams, r.Config.Conns, r.Config.Duration, r.Config.Channels, runtime.GOMAXPROCS(0))
	if r.Config.NoRequestID {
		fmt.Fprintln(w, "paid requests without x-request-id: no retries remembered")
	}
	fmt.Fprintln(w, "cpu/check: CPU time of this process (load generator, and the server unless in its own process) per check")
	if r.Config.Server == ServerProcess {
		fmt.Fprintln(w, "srv cpu/check: CPU time of the server's own process per check (with etcd, its three members too)")
	}
	results := []Result{r.DoNothing, r.Quotes, r.Paid, r.PaidEtcd, r.PaidNoSyncStandard, r.PaidNoSync}
	for _, s := range r.Sizes {
		results = append(results, s.Paid)
	}
	// The fixed-rate phase alone has a table of its own.
	if slices.ContainsFunc(results, func(res Result) bool { return res.Name != "" }) {
		fmt.Fprintf(w, "%-26s %10s %10s %9s %9s %9s %9s %13s %7s\n", "phase", "checks", "checks/s", "p50", "p90", "p99", "cpu/check", "srv cpu/check", "errors")
	}
	for _, res := range results {
		if res.Name == "" {
			continue
		}
		note := ""
		if res.Exhausted {
			note = "  (proofs used up before the duration: raise --proofs)"
		}
		if res.FirstErr != "" {
			note += "  first error: " + res.FirstErr
		}
		fmt.Fprintf(w, "%-26s %10d %10.0f %9s %9s %9s %9s %13s %7d%s\n", res.Name, res.Checks, res.Rate(),
			round(res.P50), round(res.P90), round(res.P99), round(res.CPUPerCheck()), serverCPU(res.ServerApart, res.ServerCPU, res.Checks), res.Errors, note)
		if res.Commits > 0 {
			fmt.Fprintf(w, "%-26s %d group commits of %.1f writes, commit p50 %s p99 %s\n", "", res.Commits,
				res.WritesPerCommit, round(res.CommitP50), round(res.CommitP99))
		}
	}
	for _, ratio := range []struct {
		name  string
		a, b  Result
		byCPU bool
	}{{"paid/do-nothing", r.Paid, r.DoNothing, true}, {"quotes/do-nothing", r.Quotes, r.DoNothing, true}, {"durable/non-durable", r.Paid, r.PaidNoSync, false},
		{"etcd/Badger", r.PaidEtcd, r.Paid, true}, {"uraiden/standard codec", r.PaidNoSync, r.PaidNoSyncStandard, true}} {
		if ratio.a.Name == "" || ratio.b.Name == "" {
			continue
		}
		fmt.Fprintf(w, "%-22s %.2f", ratio.name, ratio.a.Rate()/ratio.b.Rate())
		if ratio.byCPU && ratio.a.totalCPUPerCheck() > 0 {
			// What the ratio would be with the cores to the bench alone: both are CPU-bound.
			fmt.Fprintf(w, "   by CPU per check %.2f", float64(ratio.b.totalCPUPerCheck())/float64(ratio.a.totalCPUPerCheck()))
		}
		fmt.Fprintln(w)
	}
	printRates(w, r.Rates)
	r.printTargets(w)
	if len(r.Sizes) > 0 {
		where := "server process"
		if r.Sizes[0].InProcess {
			where = "whole bench process (server in process)"
		}
		fmt.Fprintf(w, "ledger size: start, resident memory (%s), GET /api/1/stats\n", where)
		fmt.Fprintf(w, "%10s %10s %10s %10s %10s %9s %9s %9s %10s %10s\n",
			"channels", "filled in", "ready in", "open", "scan", "RSS ready", "RSS after", "RSS peak", "stats p50", "stats p99")
		for _, s := range r.Sizes {
			fmt.Fprintf(w, "%10d %10s %10s %10s %10s %8dM %8dM %8dM %10s %10s\n", s.Channels,
				round(s.Filled), round(s.Ready), round(s.Open), round(s.Scan),
				s.RSSReady>>20, s.RSSAfter>>20, s.RSSPeak>>20, round(s.StatsP50), round(s.StatsP99))
		}
	}
}

// serverCPU formats a server's CPU time per check, "-" when it was not measured apart.
func serverCPU(apart bool, cpu time.Duration, checks int) string {
	if !apart {
		return "-"
	}
	return round(perCheck(cpu, checks))
}

// The CPU targets, as ratios of figures of the same run.
const (
	// TargetNoSyncVsDoNothing bounds server CPU per paid no-sync check over server CPU per
	// do-nothing check plus one recovery.
	TargetNoSyncVsDoNothing = 1.4
	// TargetDurableExtra bounds what durability adds to the server's CPU per paid check.
	TargetDurableExtra = 15 * time.Microsecond
)

// NoSyncVsDoNothingCPU is server CPU per paid no-sync check / (server CPU per do-nothing
// check + one recovery), 0 unless both were measured apart.
func (r *Report) NoSyncVsDoNothingCPU() float64 {
	if !r.PaidNoSync.ServerApart || !r.DoNothing.ServerApart || r.Recovery <= 0 {
		return 0
	}
	return ratio(float64(r.PaidNoSync.ServerCPUPerCheck()), float64(r.DoNothing.ServerCPUPerCheck()+r.Recovery))
}

// DurableExtraCPU is server CPU per durable paid check minus per no-sync one; ok when both
// were measured apart.
func (r *Report) DurableExtraCPU() (time.Duration, bool) {
	if !r.Paid.ServerApart || !r.PaidNoSync.ServerApart {
		return 0, false
	}
	return r.Paid.ServerCPUPerCheck() - r.PaidNoSync.ServerCPUPerCheck(), true
}

// printTargets writes the CPU targets' figures, when the phases they need ran in their own process.
func (r *Report) printTargets(w io.Writer) {
	v := r.NoSyncVsDoNothingCPU()
	extra, ok := r.DurableExtraCPU()
	if v == 0 && !ok {
		return
	}
	fmt.Fprintln(w, "against the targets (server process CPU per check, this run):")
	if v > 0 {
		fmt.Fprintf(w, "  paid no-sync %s / (do-nothing %s + one recovery %s) = %.2f   target <= %.1f\n",
			round(r.PaidNoSync.ServerCPUPerCheck()), round(r.DoNothing.ServerCPUPerCheck()), round(r.Recovery), v, TargetNoSyncVsDoNothing)
	}
	if ok {
		fmt.Fprintf(w, "  durable - no-sync: %s - %s = %s   target <= %s\n",
			round(r.Paid.ServerCPUPerCheck()), round(r.PaidNoSync.ServerCPUPerCheck()), round(extra), TargetDurableExtra)
	}
}

func round(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// Run runs the phases of cfg: do-nothing, quotes, paid (durable) on Badger and/or etcd, paid
// (no sync).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if cfg.Channels < cfg.Streams {
		return nil, fmt.Errorf("bench: --channels (%d) must be at least --streams (%d): each stream pays on its own channels", cfg.Channels, cfg.Streams)
	}
	if !slices.Contains(Codecs, cfg.Codec) {
		return nil, fmt.Errorf("bench: unknown codec %q (codecs: %v)", cfg.Codec, Codecs)
	}
	if !slices.Contains(Servers, cfg.Server) {
		return nil, fmt.Errorf("bench: unknown server placement %q (%v)", cfg.Server, Servers)
	}
	if cfg.Server == ServerProcess && cfg.ServerCommand == nil {
		return nil, errors.New("bench: a server process needs Config.ServerCommand")
	}
	if !slices.Contains(Ledgers, cfg.Ledger) {
		return nil, fmt.Errorf("bench: unknown ledger %q (ledgers: %v)", cfg.Ledger, Ledgers)
	}
	for _, p := range cfg.Phases {
		if !slices.Contains(PhaseNames, p) {
			return nil, fmt.Errorf("bench: unknown phase %q (phases: %v)", p, PhaseNames)
		}
	}
	if err := cfg.checkValidRates(); err != nil {
		return nil, err
	}
	rep := &Report{Config: cfg}
	fx, err := NewFixture(cfg.Channels)
	if err != nil {
		return nil, err
	}
	fx.noRequestID = cfg.NoRequestID
	var proofs *Proofs
	if cfg.runs(PhaseDurable) || cfg.runs(PhaseNoSync) || cfg.runs(PhaseRate) || cfg.runs(PhaseSize) {
		perChannel := (cfg.Proofs + cfg.Channels - 1) / cfg.Channels
		fmt.Fprintf(cfg.Progress, "signing %d proofs (%d channels × %d balances)…\n", perChannel*cfg.Channels, cfg.Channels, perChannel)
		start := time.Now()
		if proofs, err = fx.SignProofs(ctx, perChannel); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Progress, "signed in %s\n", time.Since(start).Round(time.Millisecond))
	}

	if cfg.runs(PhaseDoNothing) {
		// Do-nothing ext_authz server: the ceiling of gRPC on this machine.
		fmt.Fprintln(cfg.Progress, "phase: do-nothing server")
		srv, err := startPhaseServer(ctx, cfg.command(), ServeSpec{Kind: serveDoNothing, StandardCodec: cfg.Codec == CodecStandard})
		if err != nil {
			return nil, err
		}
		rep.DoNothing, err = drive(ctx, PhaseDoNothing, "do-nothing", srv, cfg, fx.quoteLoad(true))
		if serr := srv.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return nil, err
		}
	}
	if cfg.runs(PhaseQuotes) || (cfg.runs(PhaseDurable) && cfg.badger()) {
		if err := fx.runLedgerPhases(ctx, cfg, rep, proofs, false, cfg.Codec != CodecStandard); err != nil {
			return nil, err
		}
	}
	if cfg.runs(PhaseDurable) && cfg.etcd() {
		// Right after Badger's, so that both see the machine as alike as a run allows.
		if err := fx.runEtcdPhase(ctx, cfg, rep, proofs); err != nil {
			return nil, err
		}
	}
	if cfg.runs(PhaseNoSync) {
		if cfg.Codec == CodecBoth {
			if err := fx.runLedgerPhases(ctx, cfg, rep, proofs, true, false); err != nil {
				return nil, err
			}
		}
		if err := fx.runLedgerPhases(ctx, cfg, rep, proofs, true, cfg.Codec != CodecStandard); err != nil {
			return nil, err
		}
	}
	if cfg.runs(PhaseRate) {
		for _, r := range cfg.Rates {
			for _, store := range []string{LedgerBadger, LedgerEtcd} {
				if (store == LedgerBadger && !cfg.badger()) || (store == LedgerEtcd && !cfg.etcd()) {
					continue
				}
				run, err := fx.runRate(ctx, cfg, rep, proofs, r, store)
				if err != nil {
					return nil, err
				}
				rep.Rates = append(rep.Rates, run)
			}
		}
	}
	if rep.DoNothing.ServerApart && rep.PaidNoSync.ServerApart {
		// After the phases, on cores the bench no longer loads.
		if rep.Recovery, err = fx.measureRecovery(300 * time.Millisecond); err != nil {
			return nil, err
		}
	}
	if cfg.runs(PhaseSize) {
		for _, n := range []int{cfg.Channels, cfg.LedgerChannels} {
			run, err := fx.runSize(ctx, cfg, proofs, n)
			if err != nil {
				return nil, err
			}
			rep.Sizes = append(rep.Sizes, run)
		}
	}
	return rep, nil
}

// runLedgerPhases serves uraiden over a fresh ledger and runs the phases that use it: the
// quotes and the durable paid checks, or the paid checks without sync (into
// PaidNoSyncStandard when uraiden's codec is off and Codec is both).
func (fx *Fixture) runLedgerPhases(ctx context.Context, cfg Config, rep *Report, proofs *Proofs, noSync, uraidenCodec bool) (err error) {
	dir, err := os.MkdirTemp("", "uraiden-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := startPhaseServer(ctx, cfg.command(), ServeSpec{Kind: serveLedger, Dir: dir, NoSync: noSync, StandardCodec: !uraidenCodec, Channels: cfg.Channels})
	if err != nil {
		return err
	}
	defer func() {
		if serr := srv.stop(); err == nil {
			err = serr
		}
	}()
	if noSync {
		res, phase, name := &rep.PaidNoSync, PhaseNoSync, "paid (no sync)"
		if cfg.Codec == CodecBoth {
			name = "paid (no sync, uraiden)"
			if !uraidenCodec {
				res, phase, name = &rep.PaidNoSyncStandard, PhaseNoSync+"-standard-codec", "paid (no sync, standard)"
			}
		}
		fmt.Fprintln(cfg.Progress, "phase: "+name)
		return driveCommits(ctx, phase, name, srv, cfg, fx.paidLoad(proofs, cfg.Streams), res)
	}
	if cfg.runs(PhaseQuotes) {
		fmt.Fprintln(cfg.Progress, "phase: 402 quotes")
		if rep.Quotes, err = drive(ctx, PhaseQuotes, "402 quotes", srv, cfg, fx.quoteLoad(false)); err != nil {
			return err
		}
	}
	if cfg.runs(PhaseDurable) && cfg.badger() {
		fmt.Fprintln(cfg.Progress, "phase: paid (durable)")
		err = driveCommits(ctx, PhaseDurable, "paid (durable)", srv, cfg, fx.paidLoad(proofs, cfg.Streams), &rep.Paid)
	}
	return err
}

// driveCommits drives a paid load into res with the server's group commits during it.
func driveCommits(ctx context.Context, phase, name string, srv *phaseServer, cfg Config, ld load, res *Result) error {
	if err := srv.takeCommits(ctx, &Result{}); err != nil {
		return err
	}
	var err error
	if *res, err = drive(ctx, phase, name, srv, cfg, ld); err != nil {
		return err
	}
	return srv.takeCommits(ctx, res)
}

// Fixture is the receiver, contract and funded senders of a bench.
type Fixture struct {
	Receiver, Contract, Token common.Address
	keys                      []*ecdsa.PrivateKey
	senders                   []common.Address
	openBlock                 uint32
	// The header values, formatted once: formatting is the client's cost.
	contractHex, receiverHex, openBlockStr string
	senderHex                              []string
	commits                                commitLog
	// noRequestID is Config.NoRequestID, for the paid loads.
	noRequestID bool
}

// commitLog records the ledger's group commits.
type commitLog struct {
	mu     sync.Mutex
	writes int
	took   []time.Duration
}

func (c *commitLog) add(writes int, took time.Duration) {
	c.mu.Lock()
	c.writes += writes
	c.took = append(c.took, took)
	c.mu.Unlock()
}

// take returns what was recorded since the last take, into res.
func (c *commitLog) take(res *Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.took); n > 0 {
		slices.Sort(c.took)
		res.Commits, res.WritesPerCommit = n, float64(c.writes)/float64(n)
		res.CommitP50, res.CommitP99 = c.took[n/2], c.took[min(n-1, n*99/100)]
	}
	c.writes, c.took = 0, c.took[:0]
}

// NewFixture makes channels senders. Their keys are derived from their index, so that every
// run (and a ghz request file) pays on the same senders.
func NewFixture(channels int) (*Fixture, error) {
	fx := &Fixture{}
	fx.setAddresses()
	for i := range channels {
		seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("uraiden bench sender"), uint64(i)))
		k, err := crypto.ToECDSA(seed[:])
		if err != nil {
			return nil, err
		}
		fx.keys = append(fx.keys, k)
		fx.senders = append(fx.senders, crypto.PubkeyToAddress(k.PublicKey))
		fx.senderHex = append(fx.senderHex, fx.senders[len(fx.senders)-1].Hex())
	}
	return fx, nil
}

// setAddresses sets the receiver, contract, token and open block every bench uses: a
// server process over a bench ledger knows them without the senders' keys.
func (fx *Fixture) setAddresses() {
	fx.Receiver = common.HexToAddress("0x00000000000000000000000000000000000b0001")
	fx.Contract = common.HexToAddress("0x00000000000000000000000000000000000b0002")
	fx.Token = common.HexToAddress("0x00000000000000000000000000000000000b0003")
	fx.openBlock = 100
	fx.contractHex, fx.receiverHex = fx.Contract.Hex(), fx.Receiver.Hex()
	fx.openBlockStr = strconv.FormatUint(uint64(fx.openBlock), 10)
}

// Proofs are the pre-signed balances: sigs[channel][k] pays balance (k+1)·Price.
type Proofs struct {
	sigs [][]string
}

// PerChannel is how many proofs each channel has.
func (p *Proofs) PerChannel() int {
	if len(p.sigs) == 0 {
		return 0
	}
	return len(p.sigs[0])
}

// SignProofs signs perChannel successive balances on every channel, on every core.
func (fx *Fixture) SignProofs(ctx context.Context, perChannel int) (*Proofs, error) {
	p := &Proofs{sigs: make([][]string, len(fx.keys))}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(fx.keys) || ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				sigs := make([]string, perChannel)
				for k := range sigs {
					b := rdn.Balance{Receiver: fx.Receiver, OpenBlock: fx.openBlock, Balance: big.NewInt(int64(k+1) * Price), Contract: fx.Contract}
					sig, err := b.Sign(fx.keys[i])
					if err != nil {
						errs[w] = err
						return
					}
					sigs[k] = sig.Hex()
				}
				p.sigs[i] = sigs
			}
		})
	}
	wg.Wait()
	return p, errors.Join(errs...)
}

// Identity is what the bench's ledgers belong to.
func (fx *Fixture) Identity() ledger.Identity {
	return ledger.Identity{ChainID: 1337, Contract: fx.Contract, Receiver: fx.Receiver}
}

// OpenLedger creates a ledger in dir holding every channel, funded and confirmed.
func (fx *Fixture) OpenLedger(dir string, noSync bool, onCommit func(int, time.Duration)) (*ledger.Ledger, error) {
	l, err := ledger.Open(ledger.Options{Dir: dir, Identity: fx.Identity(), NoSync: noSync, OnCommit: onCommit})
	if err != nil {
		return nil, err
	}
	if err := fx.createChannels(l, fx.senders); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// deposit funds every bench channel.
var deposit = new(big.Int).Lsh(big.NewInt(1), 100)

// createChannels creates confirmed, funded channels of the senders at the fixture's open
// block, as the chain watcher records channels opened before its start block (Seeded: no
// undo records, which a ledger keeps only for its last blocks).
func (fx *Fixture) createChannels(l *ledger.Ledger, senders []common.Address) error {
	events := make([]ledger.Event, 0, len(senders))
	for _, s := range senders {
		events = append(events, ledger.Event{Kind: ledger.Created, Channel: rdn.ChannelID{Sender: s, OpenBlock: fx.openBlock},
			Block: uint64(fx.openBlock), Amount: deposit, Seeded: true})
	}
	confirmed := uint64(fx.openBlock) + 10
	return l.Apply(context.Background(), ledger.Update{Events: events, Sync: ledger.SyncState{Cursor: confirmed, Confirmed: confirmed}})
}

// Service returns the authz service over a new ledger in dir, with the bench's prices and
// an always-healthy chain, and the server's metrics hooks.
func (fx *Fixture) Service(dir string, noSync bool) (*authz.Service, *ledger.Ledger, error) {
	var l *ledger.Ledger
	m := newMetrics(func() *ledger.Ledger { return l })
	l, err := fx.OpenLedger(dir, noSync, m.ObserveCommit)
	if err != nil {
		return nil, nil, err
	}
	return fx.serviceOver(l, m), l, nil
}

// newMetrics makes the metrics the server keeps, reading the ledger only at scrape time.
func newMetrics(l func() *ledger.Ledger) *metrics.Metrics {
	return metrics.New(metrics.Sources{
		Stats: func() ledger.Stats { return l().Stats() },
		Sync:  func() ledger.SyncState { return l().Sync() },
		Head:  func() (uint64, bool) { return 0, false },
	})
}

// serviceOver is the authz service over an open ledger.
func (fx *Fixture) serviceOver(l *ledger.Ledger, m *metrics.Metrics) *authz.Service {
	table, err := pricing.Parse([]byte(priceTable))
	if err != nil {
		panic(err) // the table is a constant
	}
	return authz.NewService(authz.Config{
		Receiver: fx.Receiver, Contract: fx.Contract, Token: fx.Token,
		Prices:  func() authz.Pricer { return table },
		Ledger:  l,
		Chain:   healthyChain{},
		Observe: m.ObserveCheck,
	}, slog.New(slog.DiscardHandler))
}

// healthyChain is the chain health of the bench: always healthy, because the chain watcher
// is not what is measured.
type healthyChain struct{}

func (healthyChain) Healthy() error { return nil }

// doNothing is an ext_authz server that allows everything at once.
type doNothing struct {
	authv3.UnimplementedAuthorizationServer
}

func (doNothing) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}}, nil
}

type server struct {
	addr string
	g    *grpc.Server
	done chan struct{}
}

func serve(addr string, impl authv3.AuthorizationServer, opts ...grpc.ServerOption) (*server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(g, impl)
	reflection.Register(g)
	s := &server{addr: l.Addr().String(), g: g, done: make(chan struct{})}
	go pprof.Do(context.Background(), pprof.Labels("side", "server"), func(context.Context) {
		_ = g.Serve(l)
		close(s.done)
	})
	return s, nil
}

func (s *server) close() {
	s.g.Stop()
	<-s.done
}

// Serve serves the uraiden authz service with reflection on addr, with uraiden's codec, until
// ctx ends: the target of an outside load generator.
func Serve(ctx context.Context, addr string, impl authv3.AuthorizationServer, ready func(addr string)) error {
	s, err := serve(addr, impl, codecOptions(true)...)
	if err != nil {
		return err
	}
	ready(s.addr)
	<-ctx.Done()
	s.close()
	return nil
}

// load is what one stream sends: next fills the stream's request and returns false when
// it has nothing left; want checks an answer.
type load struct {
	newStream func(stream int) (req *authv3.CheckRequest, next func() bool)
	want      func(*authv3.CheckResponse) error
}

// baseHeaders are the headers Envoy sends for a plain HTTP/1.1 GET.
func baseHeaders() map[string]string {
	return map[string]string{
		":authority": "localhost:10000", ":method": "GET", ":path": PaidPath, ":scheme": "http",
		"accept": "*/*", "user-agent": "uraiden-bench", "x-forwarded-proto": "http",
		"x-request-id": "7c1f9d3e-1111-4b5b-9c1e-0123456789ab",
	}
}

func checkRequest(headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: "GET", Path: PaidPath, Host: "localhost:10000", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: headers,
		},
	}}}
}

// quoteLoad sends the priced route without a proof: a 402 quote from uraiden, OK from the
// do-nothing server.
func (fx *Fixture) quoteLoad(allowed bool) load {
	return load{
		newStream: func(int) (*authv3.CheckRequest, func() bool) {
			return checkRequest(baseHeaders()), func() bool { return true }
		},
		want: func(resp *authv3.CheckResponse) error {
			if allowed {
				if resp.GetStatus().GetCode() != int32(codes.OK) {
					return fmt.Errorf("status %d", resp.GetStatus().GetCode())
				}
				return nil
			}
			if code := resp.GetDeniedResponse().GetStatus().GetCode(); code != 402 {
				return fmt.Errorf("want a 402 quote, got HTTP %d", code)
			}
			return nil
		},
	}
}

// paidLoad gives stream s the channels s, s+streams, …: it pays on them in turn, each
// balance once, in order, so every proof is accepted.
func (fx *Fixture) paidLoad(p *Proofs, streams int) load {
	return load{
		newStream: func(s int) (*authv3.CheckRequest, func() bool) {
			headers := baseHeaders()
			if fx.noRequestID {
				delete(headers, "x-request-id")
			}
			req := checkRequest(headers)
			var mine []int
			for c := s; c < len(p.sigs); c += streams {
				mine = append(mine, c)
			}
			i, k := 0, 0
			return req, func() bool {
				if k >= p.PerChannel() {
					return false
				}
				fx.setProof(headers, p, mine[i], k)
				if i++; i == len(mine) {
					i, k = 0, k+1
				}
				return true
			}
		},
		want: func(resp *authv3.CheckResponse) error {
			if resp.GetStatus().GetCode() != int32(codes.OK) {
				d := resp.GetDeniedResponse()
				return fmt.Errorf("want OK, got HTTP %d: %s", d.GetStatus().GetCode(), d.GetBody())
			}
			return nil
		},
	}
}

// setProof sets the RDN-* headers of proof k of channel c, as µRaiden's client sends them.
func (fx *Fixture) setProof(headers map[string]string, p *Proofs, c, k int) {
	headers["rdn-contract-address"] = fx.contractHex
	headers["rdn-receiver-address"] = fx.receiverHex
	headers["rdn-sender-address"] = fx.senderHex[c]
	headers["rdn-open-block"] = fx.openBlockStr
	headers["rdn-balance"] = strconv.Itoa((k + 1) * Price)
	headers["rdn-balance-signature"] = p.sigs[c][k]
}

// drive runs the load on cfg.Streams streams over cfg.Conns connections for cfg.Duration,
// or until a stream has nothing left to send.
// Its goroutines, and gRPC's for its connections, carry the profile label side=client, the
// servers' side=server: pprof -tagfocus tells the load generator's CPU from the server's.
func drive(ctx context.Context, phase, name string, srv *phaseServer, cfg Config, ld load) (res Result, err error) {
	pprof.Do(ctx, pprof.Labels("side", "client"), func(ctx context.Context) {
		res, err = driveLabeled(ctx, phase, name, srv, cfg, ld)
	})
	return res, err
}

func driveLabeled(ctx context.Context, phase, name string, srv *phaseServer, cfg Config, ld load) (Result, error) {
	addr := srv.grpcAddr
	conns := make([]*grpc.ClientConn, cfg.Conns)
	for i := range conns {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return Result{}, err
		}
		defer c.Close()
		conns[i] = c
	}
	// Connect and warm up every connection before the clock starts.
	for _, c := range conns {
		// A request without a proof: it spends nothing.
		if _, err := authv3.NewAuthorizationClient(c).Check(ctx, checkRequest(baseHeaders())); err != nil {
			return Result{}, fmt.Errorf("%s: connect %s: %w", name, addr, err)
		}
	}

	// The clock starts after the warm-up: only calls started after it count. The phase ends
	// at the deadline: no new call starts after it, and the calls in flight then finish and
	// count, so Elapsed runs until the last answer.
	var measured atomic.Bool
	var start time.Time
	var cpu, srvCPU time.Duration
	stopPhase := func() {}
	clockStarted := make(chan struct{})
	clock := time.AfterFunc(cfg.Warmup, func() {
		defer close(clockStarted)
		stopPhase = cfg.phaseStarted(ctx, phase, srv)
		start, cpu = time.Now(), processCPU()
		srvCPU, _ = srv.cpu()
		measured.Store(true)
	})
	type streamResult struct {
		lat       []time.Duration
		errors    int
		firstErr  string
		exhausted bool
	}
	results := make([]streamResult, cfg.Streams)
	var stop atomic.Bool // set when a stream runs out of proofs: the phase ends there
	var wg sync.WaitGroup
	deadline := time.Now().Add(cfg.Warmup + cfg.Duration)
	for s := range cfg.Streams {
		client := authv3.NewAuthorizationClient(conns[s%len(conns)])
		req, next := ld.newStream(s)
		r := &results[s]
		r.lat = make([]time.Duration, 0, 1<<14)
		wg.Go(func() {
			for ctx.Err() == nil && !stop.Load() && time.Now().Before(deadline) {
				if !next() {
					r.exhausted = true
					stop.Store(true)
					return
				}
				counts := measured.Load()
				t := time.Now()
				resp, err := client.Check(ctx, req)
				took := time.Since(t)
				if !counts {
					continue
				}
				if err == nil {
					err = ld.want(resp)
				} else if ctx.Err() != nil {
					return // interrupted
				}
				if err != nil {
					if r.errors++; r.firstErr == "" {
						r.firstErr = err.Error()
					}
					continue
				}
				r.lat = append(r.lat, took)
			}
		})
	}
	wg.Wait()
	if clock.Stop() {
		// Over before the warm-up was: the proofs ran out, or ctx ended.
		return Result{Name: name, Exhausted: stop.Load()}, ctx.Err()
	}
	<-clockStarted
	res := Result{Name: name, Elapsed: time.Since(start), CPU: processCPU() - cpu}
	if c, ok := srv.cpu(); ok {
		res.ServerCPU, res.ServerApart = c-srvCPU, true
	}
	// After the CPU times: writing a profile is not the phase's work.
	stopPhase()
	var all []time.Duration
	for _, r := range results {
		all = append(all, r.lat...)
		res.Errors += r.errors
		res.Exhausted = res.Exhausted || r.exhausted
		if res.FirstErr == "" {
			res.FirstErr = r.firstErr
		}
	}
	res.Checks = len(all)
	slices.Sort(all)
	if n := len(all); n > 0 {
		res.P50, res.P90, res.P99 = all[n*50/100], all[n*90/100], all[min(n-1, n*99/100)]
	}
	return res, ctx.Err()
}
