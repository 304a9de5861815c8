package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// LateAfter is how far behind its scheduled time a request may start before the fixed-rate
// phase counts it late: beyond it, the generator, not the server, shapes the latency.
const LateAfter = time.Millisecond

// maxOpenWorkers bounds the fixed-rate phase's senders: past it a stalled server would
// otherwise grow one goroutine per scheduled request, and the lag shows as late starts.
const maxOpenWorkers = 4096

// Rate is an offered rate of the fixed-rate phase: PerSecond checks/s, or, when Of is set, that
// fraction of the checks/s the durable phase measured earlier in the same run.
type Rate struct {
	PerSecond float64
	Of        float64
}

// ParseRate reads "1000" (checks/s) or "0.3x" (a fraction of the durable capacity).
func ParseRate(s string) (Rate, error) {
	f, frac := strings.CutSuffix(strings.TrimSpace(s), "x")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return Rate{}, fmt.Errorf("bench: rate %q: want checks/s (1000) or a fraction of the durable phase's (0.3x)", s)
	}
	if frac {
		return Rate{Of: v}, nil
	}
	return Rate{PerSecond: v}, nil
}

func (r Rate) String() string {
	if r.Of > 0 {
		return strconv.FormatFloat(r.Of, 'g', -1, 64) + "x"
	}
	return strconv.FormatFloat(r.PerSecond, 'g', -1, 64) + "/s"
}

// OpenResult is one load of the fixed-rate phase. Latencies run from each request's
// scheduled time, not from when it was sent: a stall of the server or of the generator
// delays every request scheduled during it, and shows.
type OpenResult struct {
	Name      string
	Offered   float64 // checks/s the schedule asked for
	Scheduled int     // requests scheduled in the measured window
	Checks    int     // answered as expected
	Errors    int
	FirstErr  string
	Elapsed   time.Duration // from the first measured request's scheduled time to the last answer
	P50, P90  time.Duration
	P99, P999 time.Duration
	// Late counts the measured requests that started more than LateAfter after their
	// scheduled time, MaxLate the worst: the generator's own lag.
	Late    int
	MaxLate time.Duration
	Workers int  // senders the schedule needed
	Short   bool // the proofs could not cover the whole schedule, which was cut
	// The server's view of the same requests: its Check duration histogram, read before and
	// after. Its buckets are a factor 2 apart, so these are interpolated within a bucket.
	ServerChecks         int
	ServerP50, ServerP99 time.Duration
	CPU                  time.Duration // this process's CPU time over the measured window
	// ServerCPU is the server process's over the same window, when ServerApart.
	ServerCPU   time.Duration
	ServerApart bool
}

// Rate is the answered checks per second.
func (r OpenResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Checks) / r.Elapsed.Seconds()
}

// RateRun is the fixed-rate phase at one offered rate: quotes, then paid durable checks, on
// one fresh ledger of Ledger (LedgerBadger or LedgerEtcd).
type RateRun struct {
	Rate         Rate
	Ledger       string
	Quotes, Paid OpenResult
}

// checkValidRates refuses what the fixed-rate phase cannot run before anything starts.
func (c *Config) checkValidRates() error {
	if !c.runs(PhaseRate) {
		if slices.Contains(c.Phases, PhaseRate) {
			return fmt.Errorf("bench: the %s phase needs a rate (--rate)", PhaseRate)
		}
		return nil
	}
	for _, r := range c.Rates {
		if r.Of > 0 && !c.runs(PhaseDurable) {
			return fmt.Errorf("bench: rate %s is a fraction of the durable phase's checks/s: run the durable phase too", r)
		}
		if r.Of <= 0 && r.PerSecond <= 0 {
			return fmt.Errorf("bench: rate %v is not positive", r)
		}
	}
	return nil
}

// runRate serves uraiden over a fresh durable ledger of store, so that the proofs pay from
// the start again, and runs the fixed-rate quotes and paid loads at r. A fraction of the
// durable capacity is of the same store's durable phase.
func (fx *Fixture) runRate(ctx context.Context, cfg Config, rep *Report, proofs *Proofs, r Rate, store string) (run RateRun, err error) {
	run = RateRun{Rate: r, Ledger: store}
	spec := ServeSpec{Kind: serveLedger, StandardCodec: cfg.Codec == CodecStandard, Channels: cfg.Channels}
	perSecond, capacity := r.PerSecond, rep.Paid
	phase, quotesName, paidName := PhaseRate, "402 quotes", "paid (durable)"
	if store == LedgerEtcd {
		spec.Kind, capacity = serveEtcd, rep.PaidEtcd
		phase, quotesName, paidName = PhaseRate+"-etcd", "402 quotes, etcd", "paid (etcd)"
	}
	if r.Of > 0 {
		if perSecond = r.Of * capacity.Rate(); perSecond <= 0 {
			return run, fmt.Errorf("bench: rate %s: the durable phase on %s measured no checks/s", r, store)
		}
	}
	if spec.Dir, err = os.MkdirTemp("", "uraiden-bench-"); err != nil {
		return run, err
	}
	defer os.RemoveAll(spec.Dir)
	if store == LedgerEtcd {
		fmt.Fprintf(cfg.Progress, "starting %d etcd members…\n", EtcdMembers)
	}
	srv, err := startPhaseServer(ctx, cfg.command(), spec)
	if err != nil {
		return run, err
	}
	defer func() {
		if serr := srv.stop(); err == nil {
			err = serr
		}
	}()

	// Phase names become file names (OnPhase): "1000", "0.3x", without the "/s".
	label := strings.TrimSuffix(r.String(), "/s")
	fmt.Fprintf(cfg.Progress, "phase: fixed rate %s (%.0f/s), %s\n", r, perSecond, quotesName)
	quotes := fx.quoteLoad(false)
	run.Quotes, err = openLoop(ctx, phase+"-quotes-"+label, quotesName, srv, cfg, perSecond, openLoad{
		newSender: func() (*authv3.CheckRequest, func(int)) { return checkRequest(baseHeaders()), func(int) {} },
		want:      quotes.want,
	}, "quote")
	if err != nil {
		return run, err
	}
	fmt.Fprintf(cfg.Progress, "phase: fixed rate %s (%.0f/s), %s\n", r, perSecond, paidName)
	run.Paid, err = openLoop(ctx, phase+"-paid-"+label, paidName, srv, cfg, perSecond, fx.paidOpenLoad(proofs), "paid")
	return run, err
}

// openLoad is what the fixed-rate phase sends: each sender has a request of its own, which
// set fills as the schedule's request i.
type openLoad struct {
	newSender func() (req *authv3.CheckRequest, set func(i int))
	// limit is how many requests it has (0: no limit).
	limit int
	// prior, when set, is the request that must be answered before request i is sent, or -1.
	prior func(i int) int
	want  func(*authv3.CheckResponse) error
}

// paidOpenLoad pays request i on channel i mod channels with that channel's next balance.
// Request i waits for the answer to the previous payment on its channel: a later balance
// that overtook an earlier one would make the earlier one stale and refused. At 1,000
// channels that payment was scheduled 1,000 requests before, so the wait is a stall's.
func (fx *Fixture) paidOpenLoad(p *Proofs) openLoad {
	channels := len(p.sigs)
	paid := fx.paidLoad(p, 1)
	return openLoad{
		newSender: func() (*authv3.CheckRequest, func(int)) {
			headers := baseHeaders()
			return checkRequest(headers), func(i int) { fx.setProof(headers, p, i%channels, i/channels) }
		},
		limit: channels * p.PerChannel(),
		prior: func(i int) int { return i - channels },
		want:  paid.want,
	}
}

// openLoop sends the load open loop: request i is due at t0 + i/perSecond whatever became of
// the ones before, handed to an idle sender or, when none is idle, to a new one. The first
// cfg.Warmup of the schedule is not measured. outcome is the server's histogram series the
// load feeds.
func openLoop(ctx context.Context, phase, name string, srv *phaseServer, cfg Config, perSecond float64, ld openLoad, outcome string) (res OpenResult, err error) {
	pprof.Do(ctx, pprof.Labels("side", "client"), func(ctx context.Context) {
		res, err = openLoopLabeled(ctx, phase, name, srv, cfg, perSecond, ld, outcome)
	})
	return res, err
}

func openLoopLabeled(ctx context.Context, phase, name string, srv *phaseServer, cfg Config, perSecond float64, ld openLoad, outcome string) (OpenResult, error) {
	res := OpenResult{Name: name, Offered: perSecond}
	addr := srv.grpcAddr
	warm := int(perSecond * cfg.Warmup.Seconds())
	total := warm + int(math.Round(perSecond*cfg.Duration.Seconds()))
	if ld.limit > 0 && total > ld.limit {
		total, res.Short = ld.limit, true
	}
	if total <= warm {
		return res, fmt.Errorf("bench: %s at %.0f/s: no proofs left after the warm-up", name, perSecond)
	}
	conns := make([]*grpc.ClientConn, cfg.Conns)
	for i := range conns {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return res, err
		}
		defer c.Close()
		conns[i] = c
		// A request without a proof, before the schedule starts: it spends nothing.
		if _, err := authv3.NewAuthorizationClient(c).Check(ctx, checkRequest(baseHeaders())); err != nil {
			return res, fmt.Errorf("%s: connect %s: %w", name, addr, err)
		}
	}

	interval := float64(time.Second) / perSecond
	due := func(i int) time.Duration { return time.Duration(float64(i) * interval) }
	type sent struct {
		lat, late time.Duration
		end       time.Time
		err       error
	}
	out := make([]sent, total)
	var answered []chan struct{}
	if ld.prior != nil {
		answered = make([]chan struct{}, total)
		for i := range answered {
			answered[i] = make(chan struct{})
		}
	}
	var t0 time.Time
	jobs := make(chan int)
	var wg sync.WaitGroup
	send := func(conn *grpc.ClientConn, i int) {
		client := authv3.NewAuthorizationClient(conn)
		req, set := ld.newSender()
		for ok := true; ok; i, ok = <-jobs {
			o := &out[i]
			at := t0.Add(due(i))
			// Measured before waiting on the channel's previous payment: that wait is the
			// server's doing, the lag up to here the generator's.
			o.late = time.Since(at)
			if ld.prior != nil {
				if p := ld.prior(i); p >= 0 {
					<-answered[p]
				}
			}
			set(i)
			resp, err := client.Check(ctx, req)
			o.end = time.Now()
			o.lat = o.end.Sub(at)
			if err == nil {
				err = ld.want(resp)
			}
			o.err = err
			if answered != nil {
				close(answered[i])
			}
		}
	}

	var (
		before      []uint64
		cpu, srvCPU time.Duration
		workers     int
		bucketsErr  error
	)
	stopPhase := func() {}
	t0 = time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if i == warm {
			stopPhase = cfg.phaseStarted(ctx, phase, srv)
			// From another process this is a loopback HTTP request, before the window's
			// first request is due.
			_, before, bucketsErr = srv.checkBuckets(ctx, outcome)
			cpu = processCPU()
			srvCPU, _ = srv.cpu()
		}
		if d := time.Until(t0.Add(due(i))); d > 0 {
			time.Sleep(d)
		}
		select {
		case jobs <- i:
		default:
			if workers == maxOpenWorkers {
				jobs <- i
				continue
			}
			conn := conns[workers%len(conns)]
			workers++
			wg.Go(func() { send(conn, i) })
		}
	}
	close(jobs)
	wg.Wait()
	res.CPU = processCPU() - cpu
	if c, ok := srv.cpu(); ok {
		res.ServerCPU, res.ServerApart = c-srvCPU, true
	}
	stopPhase()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if bucketsErr != nil {
		return res, bucketsErr
	}
	upper, after, err := srv.checkBuckets(ctx, outcome)
	if err != nil {
		return res, err
	}

	res.Workers, res.Scheduled = workers, total-warm
	start := t0.Add(due(warm))
	var lat []time.Duration
	var last time.Time
	for _, o := range out[warm:] {
		if o.late > LateAfter {
			res.Late++
		}
		res.MaxLate = max(res.MaxLate, o.late)
		if o.end.After(last) {
			last = o.end
		}
		if o.err != nil {
			if res.Errors++; res.FirstErr == "" {
				res.FirstErr = o.err.Error()
			}
			continue
		}
		lat = append(lat, o.lat)
	}
	res.Checks, res.Elapsed = len(lat), last.Sub(start)
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.P50, res.P90, res.P99, res.P999 = lat[n*50/100], lat[n*90/100], lat[min(n-1, n*99/100)], lat[min(n-1, n*999/1000)]
	}
	if len(before) == len(after) {
		diff := make([]uint64, len(after))
		for i := range after {
			diff[i] = after[i] - before[i]
		}
		res.ServerChecks = int(diff[len(diff)-1])
		res.ServerP50, res.ServerP99 = bucketQuantile(upper, diff, 0.50), bucketQuantile(upper, diff, 0.99)
	}
	return res, nil
}

// bucketQuantile is the q-quantile of a histogram given by its buckets' upper bounds in
// seconds and cumulative counts, interpolated linearly within the bucket that holds it as
// Prometheus's histogram_quantile does; a quantile in the +Inf bucket is the last finite bound.
func bucketQuantile(upper []float64, cumulative []uint64, q float64) time.Duration {
	n := len(cumulative)
	if n == 0 || cumulative[n-1] == 0 {
		return 0
	}
	rank := q * float64(cumulative[n-1])
	lower, below := 0.0, uint64(0)
	for i, c := range cumulative {
		if float64(c) >= rank && c > below {
			if math.IsInf(upper[i], 1) {
				return time.Duration(lower * float64(time.Second))
			}
			s := lower + (upper[i]-lower)*(rank-float64(below))/float64(c-below)
			return time.Duration(s * float64(time.Second))
		}
		lower, below = upper[i], c
	}
	return time.Duration(lower * float64(time.Second))
}

// printRates writes the fixed-rate phase's table.
func printRates(w io.Writer, runs []RateRun) {
	if len(runs) == 0 {
		return
	}
	fmt.Fprintf(w, "fixed rate, open loop: latency from each request's scheduled time; late: started over %s behind it (the generator's lag);\n", LateAfter)
	fmt.Fprintln(w, "server: the server's Check duration histogram over the same requests (buckets a factor 2 apart)")
	fmt.Fprintf(w, "%-17s %-14s %9s %9s %9s %9s %9s %9s %8s %10s %10s %9s %13s %7s\n", "load", "offered", "checks/s",
		"p50", "p90", "p99", "p99.9", "late", "workers", "server p50", "server p99", "cpu/check", "srv cpu/check", "errors")
	for _, run := range runs {
		for _, res := range []OpenResult{run.Quotes, run.Paid} {
			if res.Name == "" {
				continue
			}
			offered := fmt.Sprintf("%.0f/s", res.Offered)
			if run.Rate.Of > 0 {
				offered = fmt.Sprintf("%s=%.0f/s", run.Rate, res.Offered)
			}
			fmt.Fprintf(w, "%-17s %-14s %9.0f %9s %9s %9s %9s %9d %8d %10s %10s %9s %13s %7d", res.Name, offered, res.Rate(),
				round(res.P50), round(res.P90), round(res.P99), round(res.P999), res.Late, res.Workers,
				round(res.ServerP50), round(res.ServerP99), round(perCheck(res.CPU, res.Checks)),
				serverCPU(res.ServerApart, res.ServerCPU, res.Checks), res.Errors)
			if res.Short {
				fmt.Fprintf(w, "  (schedule cut to the proofs: %d requests)", res.Scheduled)
			}
			if res.FirstErr != "" {
				fmt.Fprintf(w, "  first error: %s", res.FirstErr)
			}
			fmt.Fprintln(w)
		}
	}
}
