package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/internal/dev/bench"
)

func newBenchCmd(a *app) *cobra.Command {
	var (
		cfg     bench.Config
		ghzOut  string
		ghzN    int
		listen  string
		cpuprof string
		servePh string
		tracef  string
		tracefr time.Duration
		contend string
		rates   []string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure paid checks/s, 402 quotes/s and latency over real gRPC",
		Long: `Starts ext_authz gRPC servers on 127.0.0.1 and drives Check over real gRPC
connections (--conns connections, --streams concurrent streams) for --duration per phase:

  do-nothing       an ext_authz server that answers OK at once: the gRPC ceiling here
  402 quotes       uraiden, the priced route without a proof
  paid (durable)   uraiden, a fresh pre-signed proof per request, ledger fsynced
  paid (no sync)   the same on a ledger that never syncs: what durability costs

and prints checks/s, p50/p90/p99 latency, the process's CPU time per check, the ledger's
group commits, and the ratios paid/do-nothing, quotes/do-nothing and durable/non-durable.
The load generator runs on the same cores as the servers, in the same process unless --server process.

--ledger etcd runs the durable paid phase against the etcd store instead of Badger: three
etcd members started beside the server (in this process, or in the server process with
--server process), each with its own data directory, on loopback;
--ledger both runs it against Badger and then etcd, and prints the ratio etcd/Badger. The
fixed-rate phase runs on the same store(s), each rate on a fresh one.

With --ledger-channels N it adds the size phase: it fills a ledger of N channels (the
--channels paid by the load, the others made-up senders paid once), starts a server process
over it, and reports the time until that process serves, its resident memory, the durable
paid load against it and GET /api/1/stats latency; first for a ledger of --channels only.

With --rate R,... it adds the fixed-rate phase: for each rate, on a fresh durable ledger, 402
quotes and then paid checks sent open loop, the i-th request due at i/R seconds after the
start whether or not the earlier ones were answered, by as many senders as the schedule
needs. Latency runs from each request's scheduled time, so a stall of the server or of the
generator is not hidden; it prints p50/p90/p99/p99.9, the checks/s achieved, the requests
that started over 1 ms late (the generator's own lag) and the server's p50/p99 from its
Check duration histogram over the same requests. A rate is checks/s (1000) or a fraction of
the durable phase's checks/s in the same run (0.3x).

--server process runs each phase's server (do-nothing, uraiden over Badger or etcd) as a
process of its own, this command started again: the table then reports the server process's
CPU time per check (srv cpu/check, from /proc/<pid>/stat) apart from this process's, now the
load generator's alone, and the summary sets the server's CPU per check against the targets
of issue 19 (no-sync paid vs. do-nothing plus one recovery measured in the same run; durable
minus no-sync). In process (the default), --cpuprofile profiles server and load together;
the size phase's server always runs apart.

--phases runs some of do-nothing, quotes, durable, nosync, rate, size. --cpuprofile FILE writes a
CPU profile of each phase to FILE.<phase> (the etcd one FILE.durable-etcd), its samples
labelled side=client, side=server or side=etcd (go tool pprof -tagfocus side=server ...), and
one of each server process (--server process, and the size phase's) to FILE.server.<phase>.
--trace FILE writes a runtime/trace of the first --trace-for of each phase to FILE.<phase>;
--contention FILE writes block and mutex profiles after each phase to FILE.<phase>.block
and .mutex (cumulative over the run: compare phases with go tool pprof -base).

The channels (--channels) are created directly in a fresh ledger in a temporary
directory, funded and confirmed; the chain is a stub that is always healthy: the chain
watcher is not part of the measurement. Every proof is signed before the clock starts:
signing is the client's cost. A stream pays on its own channels, so --channels must be
at least --streams.

With --ghz-out FILE it measures nothing: it writes a ghz request file of --ghz-requests
CheckRequests, each with a distinct proof (each is accepted once), then serves uraiden
with those channels on --listen until stopped, for
  ghz --insecure --call envoy.service.auth.v3.Authorization/Check -D FILE -c 50 -n N ADDR`,
		Args: cobra.NoArgs,
		// Needs no configuration.
		PersistentPreRun: func(*cobra.Command, []string) {},
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if servePh != "" {
				return bench.ServeProcess(ctx, servePh, out)
			}
			if ghzOut != "" {
				return benchGhz(cmd, cfg.Channels, ghzOut, ghzN, listen)
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			// The size phase's servers always run apart, the others' with --server process.
			cfg.ServerCommand = func(spec string) *exec.Cmd {
				return exec.CommandContext(ctx, self, "bench", "--serve-phase", spec)
			}
			for _, s := range rates {
				r, err := bench.ParseRate(s)
				if err != nil {
					return err
				}
				cfg.Rates = append(cfg.Rates, r)
			}
			cfg.Progress = cmd.ErrOrStderr()
			var hooks []func(string) func()
			if cpuprof != "" {
				hooks = append(hooks, phaseProfiler(cpuprof, cfg.Progress))
				cfg.ServerCPUProfile = cpuprof + ".server"
			}
			if tracef != "" {
				hooks = append(hooks, phaseTracer(tracef, tracefr, cfg.Progress))
			}
			if contend != "" {
				hooks = append(hooks, phaseContention(contend, cfg.Progress))
			}
			cfg.OnPhase = allPhaseHooks(hooks)
			rep, err := bench.Run(ctx, cfg)
			if err != nil {
				return err
			}
			rep.Print(out)
			if n := rep.Errors(); n > 0 {
				return fmt.Errorf("%d checks failed", n)
			}
			return nil
		},
	}
	flags := cmd.Flags()
	flags.IntVar(&cfg.Streams, "streams", 50, "concurrent Check streams")
	flags.IntVar(&cfg.Conns, "conns", 4, "gRPC client connections the streams share")
	flags.DurationVar(&cfg.Duration, "duration", 10*time.Second, "duration of each phase")
	flags.DurationVar(&cfg.Warmup, "warmup", time.Second, "load run before each phase's clock starts, not measured (0: none)")
	flags.IntVar(&cfg.Channels, "channels", 1000, "funded channels the paid load pays on")
	flags.IntVar(&cfg.Proofs, "proofs", 0, "distinct proofs signed for each paid phase (0: enough for 30,000 checks/s)")
	flags.StringSliceVar(&cfg.Phases, "phases", nil, "run only these phases (do-nothing, quotes, durable, nosync, rate, size); default all")
	flags.StringSliceVar(&rates, "rate", nil, "add the fixed-rate (open loop) phase at these offered rates: checks/s (1000) or a fraction of the durable phase's checks/s (0.3x)")
	flags.StringVar(&cfg.Codec, "codec", bench.CodecUraiden, "gRPC codec of the phases' servers: uraiden, standard (gRPC's proto codec) or both (the nosync phase with each)")
	flags.BoolVar(&cfg.NoRequestID, "no-request-id", false, "send the paid requests without x-request-id, so that no payment remembers a retry: what remembering them costs")
	flags.StringVar(&cfg.Ledger, "ledger", bench.LedgerBadger, "store of the durable paid phase: badger, etcd (three members beside the server) or both, side by side")
	flags.IntVar(&cfg.LedgerChannels, "ledger-channels", 0, "add the size phase: the durable load against a server process over a ledger of --channels, then of this many channels")
	flags.StringVar(&cfg.Server, "server", bench.ServerInProcess, "where the phases' servers run: inprocess, or process (each phase's server a process of its own, its CPU per check reported apart)")
	flags.StringVar(&servePh, "serve-phase", "", "serve one phase's server (JSON spec) for a parent bench: the server process")
	_ = flags.MarkHidden("serve-phase")
	flags.StringVar(&cpuprof, "cpuprofile", "", "write a CPU profile of each phase (servers and load, labelled side=server|client) to FILE.<phase>; a server process's to FILE.server.<phase>")
	flags.StringVar(&tracef, "trace", "", "write a runtime/trace of the first --trace-for of each phase to FILE.<phase> (go tool trace)")
	flags.DurationVar(&tracefr, "trace-for", 2*time.Second, "with --trace: how much of each phase to trace")
	flags.StringVar(&contend, "contention", "", "write block and mutex profiles of each phase to FILE.<phase>.block and FILE.<phase>.mutex")
	flags.StringVar(&ghzOut, "ghz-out", "", "write a ghz request file and serve uraiden for ghz instead of measuring")
	flags.IntVar(&ghzN, "ghz-requests", 100000, "with --ghz-out: requests (distinct proofs) in the file")
	flags.StringVar(&listen, "listen", "127.0.0.1:9001", "with --ghz-out: where to serve ext_authz")
	return cmd
}

func benchGhz(cmd *cobra.Command, channels int, file string, n int, listen string) error {
	ctx := cmd.Context()
	if channels <= 0 {
		channels = 1000
	}
	fx, err := bench.NewFixture(channels)
	if err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	count, err := fx.WriteGhz(ctx, f, n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "uraiden-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	svc, l, err := fx.Service(dir, false)
	if err != nil {
		return err
	}
	defer l.Close()
	return bench.Serve(ctx, listen, svc, func(addr string) {
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d requests, each a distinct proof (accepted once each)\n"+
			"serving uraiden ext_authz on %s with %d channels (durable ledger); stop with Ctrl-C\n"+
			"ghz --insecure --call envoy.service.auth.v3.Authorization/Check -D %s -c 50 -n %d %s\n",
			file, count, addr, channels, file, count, addr)
	})
}

// phaseProfiler returns a bench.Config.OnPhase that writes a CPU profile of each phase to
// prefix.<phase>. A profile that cannot be written is reported and the run goes on.
func phaseProfiler(prefix string, progress io.Writer) func(string) func() {
	return func(phase string) func() {
		name := prefix + "." + phase
		f, err := os.Create(name)
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(progress, "no CPU profile of %s: %v\n", phase, err)
			return nil
		}
		return func() {
			pprof.StopCPUProfile()
			f.Close()
			fmt.Fprintf(progress, "CPU profile of %s: %s\n", phase, name)
		}
	}
}

// allPhaseHooks runs every hook at each phase's start and stops them in reverse order.
func allPhaseHooks(hooks []func(string) func()) func(string) func() {
	if len(hooks) == 0 {
		return nil
	}
	return func(phase string) func() {
		var stops []func()
		for _, h := range hooks {
			if stop := h(phase); stop != nil {
				stops = append(stops, stop)
			}
		}
		return func() {
			for i := len(stops) - 1; i >= 0; i-- {
				stops[i]()
			}
		}
	}
}

// phaseTracer returns a bench.Config.OnPhase that writes a runtime/trace of the first d of
// each phase to prefix.<phase>: a whole phase's trace at thousands of checks/s is too large
// to open, and a tail that repeats shows in its first seconds.
func phaseTracer(prefix string, d time.Duration, progress io.Writer) func(string) func() {
	return func(phase string) func() {
		name := prefix + "." + phase
		f, err := os.Create(name)
		if err == nil {
			if err = trace.Start(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(progress, "no trace of %s: %v\n", phase, err)
			return nil
		}
		var once sync.Once
		stop := func() {
			once.Do(func() {
				trace.Stop()
				f.Close()
				fmt.Fprintf(progress, "trace of %s: %s\n", phase, name)
			})
		}
		t := time.AfterFunc(d, stop)
		return func() { t.Stop(); stop() }
	}
}

// phaseContention returns a bench.Config.OnPhase that writes the block and mutex profiles
// of each phase to prefix.<phase>.block and .mutex. Both are cumulative from the start of
// the process, so each phase's profile holds the earlier phases too: compare with
// go tool pprof -base.
func phaseContention(prefix string, progress io.Writer) func(string) func() {
	// On only with the flag: recording every blocking event would slow the phases it
	// measures. A block of 10 µs or more is always recorded, shorter ones sampled; one
	// mutex contention in ten.
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(10)
	return func(phase string) func() {
		return func() {
			for _, kind := range []string{"block", "mutex"} {
				name := prefix + "." + phase + "." + kind
				f, err := os.Create(name)
				if err == nil {
					err = pprof.Lookup(kind).WriteTo(f, 0)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				if err != nil {
					fmt.Fprintf(progress, "no %s profile of %s: %v\n", kind, phase, err)
				}
			}
		}
	}
}
