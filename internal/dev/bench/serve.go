package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/internal/metrics"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// Where the phases' servers run, for Config.Server.
const (
	// ServerInProcess serves in the bench's own process: one CPU figure for server and load,
	// and CPU profiles that hold both, labelled.
	ServerInProcess = "inprocess"
	// ServerProcess serves each phase from a process of its own (Config.ServerCommand): the
	// server's CPU time is read apart from the load generator's.
	ServerProcess = "process"
)

// Servers are Config.Server's values.
var Servers = []string{ServerInProcess, ServerProcess}

// Kinds of ServeSpec.
const (
	serveDoNothing = "do-nothing"
	serveLedger    = "ledger"   // a fresh Badger ledger in Dir holding the fixture's channels
	serveEtcd      = "etcd"     // the etcd store over EtcdMembers members with their data in Dir
	serveExisting  = "existing" // a filled ledger in Dir, opened as a server starts (the size phase)
)

// ServeSpec is the server a phase needs. The bench passes it as JSON to its server process.
type ServeSpec struct {
	Kind          string `json:"kind"`
	Dir           string `json:"dir,omitempty"`
	NoSync        bool   `json:"nosync,omitempty"`
	StandardCodec bool   `json:"standard_codec,omitempty"`
	Channels      int    `json:"channels,omitempty"`
}

// ServerCommand starts a server process for a spec (the bench command runs itself with
// --serve-phase spec), whose output's first line is its ready line.
type ServerCommand func(spec string) *exec.Cmd

// served is a phase's server as the process that runs it sees it.
type served struct {
	grpcAddr, adminAddr string
	open, scan          time.Duration // the existing ledger's opening and scan
	m                   *metrics.Metrics
	commits             *commitLog
}

// servePhase serves spec until ctx ends and tells ready once it serves.
func servePhase(ctx context.Context, spec ServeSpec, ready func(*served)) (err error) {
	fx := &Fixture{}
	fx.setAddresses()
	if spec.Kind == serveLedger || spec.Kind == serveEtcd {
		// The senders' keys derive from their index: the same channels as the load's.
		if fx, err = NewFixture(spec.Channels); err != nil {
			return err
		}
	}
	s := &served{commits: &fx.commits}
	var impl authv3.AuthorizationServer = doNothing{}
	var l *ledger.Ledger
	s.m = newMetrics(func() *ledger.Ledger { return l })
	onCommit := func(writes int, took time.Duration) {
		s.m.ObserveCommit(writes, took)
		fx.commits.add(writes, took)
	}
	switch spec.Kind {
	case serveDoNothing:
	case serveLedger:
		if l, err = fx.OpenLedger(spec.Dir, spec.NoSync, onCommit); err != nil {
			return err
		}
		defer l.Close()
		impl = fx.serviceOver(l, s.m)
	case serveEtcd:
		svc, err := fx.NewEtcdService(ctx, spec.Dir)
		if err != nil {
			return err
		}
		defer svc.Close()
		impl, s.m = svc.Service, svc.Metrics
	case serveExisting:
		start := time.Now()
		if l, err = ledger.Open(ledger.Options{Dir: spec.Dir, Identity: fx.Identity(), OnCommit: onCommit}); err != nil {
			return err
		}
		defer l.Close()
		s.open = time.Since(start)
		if _, err := chain.ResumeCandidates(l); err != nil {
			return err
		}
		debug.FreeOSMemory() // as the server does after it
		s.scan = time.Since(start) - s.open
		impl = fx.serviceOver(l, s.m)
		adm, err := fx.adminAPI(l)
		if err != nil {
			return err
		}
		defer adm.Close(context.Background())
		s.adminAddr = adm.Addr()
	default:
		return fmt.Errorf("bench: unknown server kind %q", spec.Kind)
	}
	srv, err := serve("127.0.0.1:0", impl, codecOptions(!spec.StandardCodec)...)
	if err != nil {
		return err
	}
	defer srv.close()
	s.grpcAddr = srv.addr
	ready(s)
	<-ctx.Done()
	return nil
}

// adminAPI serves the admin API over l, as a server does, for GET /api/1/stats.
func (fx *Fixture) adminAPI(l *ledger.Ledger) (*admin.Server, error) {
	adm, err := admin.New(admin.Config{
		Listen: "127.0.0.1:0", Prefix: "/api/1", OperatorToken: statsToken,
		Receiver: fx.Receiver, Contract: fx.Contract, TokenAddress: fx.Token,
		Ledger:      l,
		SignClosing: func(rdn.Closing) (rdn.Signature, error) { return rdn.Signature{}, errors.New("bench: no key") },
		Chain: admin.NewChainView(func(context.Context) (uint64, error) { return l.Sync().Cursor, nil },
			func(context.Context) (*big.Int, error) { return new(big.Int), nil }, time.Second),
		Ready:  func() error { return nil },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	return adm, adm.Start()
}

// statsToken is the operator token of the bench's admin API.
const statsToken = "bench-operator-token"

// ServeProcess is the bench's server process: it serves the spec (JSON), prints a ready line
// on out, and serves on its bench address what the parent reads of it (Check histogram,
// group commits) until ctx ends.
func ServeProcess(ctx context.Context, spec string, out io.Writer) error {
	var sp ServeSpec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil {
		return fmt.Errorf("bench: server spec %q: %w", spec, err)
	}
	// Listening first: a failure then ends the process, which the parent, waiting for the
	// ready line, sees as its output ending.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: the server process's bench address: %w", err)
	}
	var hs *http.Server
	err = servePhase(ctx, sp, func(s *served) {
		hs = &http.Server{Handler: s.handler()}
		go hs.Serve(l)
		fmt.Fprintf(out, "ready grpc=%s admin=%s bench=%s open=%s scan=%s\n", s.grpcAddr, s.adminAddr, l.Addr(), s.open, s.scan)
	})
	if hs != nil {
		hs.Close()
	} else {
		l.Close()
	}
	return err
}

// bucketsJSON is a Check duration histogram; the +Inf bound, which JSON cannot hold, is left out
// of Upper (the last count is the +Inf bucket's).
type bucketsJSON struct {
	Upper      []float64 `json:"upper"`
	Cumulative []uint64  `json:"cumulative"`
}

// commitsJSON is what commitLog.take returns.
type commitsJSON struct {
	Commits              int
	WritesPerCommit      float64
	CommitP50, CommitP99 time.Duration
}

func (s *served) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /buckets", func(w http.ResponseWriter, r *http.Request) {
		upper, cum := s.m.CheckDurationBuckets(r.URL.Query().Get("outcome"))
		if n := len(upper); n > 0 {
			upper = upper[:n-1]
		}
		_ = json.NewEncoder(w).Encode(bucketsJSON{Upper: upper, Cumulative: cum})
	})
	// A CPU profile of this process from POST to GET: the parent's measured window.
	var profile bytes.Buffer
	mux.HandleFunc("POST /cpuprofile", func(w http.ResponseWriter, r *http.Request) {
		profile.Reset()
		if err := pprof.StartCPUProfile(&profile); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
		}
	})
	mux.HandleFunc("GET /cpuprofile", func(w http.ResponseWriter, r *http.Request) {
		pprof.StopCPUProfile()
		_, _ = w.Write(profile.Bytes())
	})
	mux.HandleFunc("GET /commits", func(w http.ResponseWriter, r *http.Request) {
		var res Result
		s.commits.take(&res)
		_ = json.NewEncoder(w).Encode(commitsJSON{res.Commits, res.WritesPerCommit, res.CommitP50, res.CommitP99})
	})
	return mux
}

// phaseServer is a running phase server, in this process (pid 0, served set) or another.
type phaseServer struct {
	grpcAddr, adminAddr, benchAddr string
	open, scan                     time.Duration
	pid                            int
	served                         *served
	stop                           func() error
}

// startPhaseServer starts the server of spec, in this process when command is nil, and waits
// until it serves.
func startPhaseServer(ctx context.Context, command ServerCommand, spec ServeSpec) (*phaseServer, error) {
	if command == nil {
		ctx, cancel := context.WithCancel(ctx)
		readyCh := make(chan *served, 1)
		done := make(chan error, 1)
		// The ledger's committer and the gRPC server's goroutines inherit the label.
		go pprof.Do(ctx, pprof.Labels("side", "server"), func(ctx context.Context) {
			done <- servePhase(ctx, spec, func(s *served) { readyCh <- s })
		})
		select {
		case s := <-readyCh:
			return &phaseServer{grpcAddr: s.grpcAddr, adminAddr: s.adminAddr, open: s.open, scan: s.scan, served: s,
				stop: func() error { cancel(); return <-done }}, nil
		case err := <-done:
			cancel()
			return nil, err
		}
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := command(string(js))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() error {
		_ = cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if isInterrupted(err) {
			return nil
		}
		return err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("bench: the server process did not start: %w", err)
	}
	s := &phaseServer{pid: cmd.Process.Pid, stop: stop}
	if err := s.parseReady(strings.TrimSpace(line)); err != nil {
		stop()
		return nil, err
	}
	go io.Copy(io.Discard, stdout)
	return s, nil
}

func (s *phaseServer) parseReady(line string) error {
	fields := strings.Fields(line)
	if len(fields) == 0 || fields[0] != "ready" {
		return fmt.Errorf("bench: the server process said %q", line)
	}
	var err error
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "grpc":
			s.grpcAddr = v
		case "admin":
			s.adminAddr = v
		case "bench":
			s.benchAddr = v
		case "open":
			s.open, err = time.ParseDuration(v)
		case "scan":
			s.scan, err = time.ParseDuration(v)
		}
		if err != nil {
			return fmt.Errorf("bench: the server process said %q: %w", line, err)
		}
	}
	if s.grpcAddr == "" || s.benchAddr == "" {
		return fmt.Errorf("bench: the server process said %q", line)
	}
	return nil
}

// cpu is the CPU time the server's process has used so far, and whether it is the server's
// alone (false in process).
func (s *phaseServer) cpu() (time.Duration, bool) {
	if s.pid == 0 {
		return 0, false
	}
	return pidCPU(s.pid), true
}

// checkBuckets is the server's Check duration histogram of outcome: upper bounds in seconds,
// +Inf last, and cumulative counts.
func (s *phaseServer) checkBuckets(ctx context.Context, outcome string) ([]float64, []uint64, error) {
	if s.served != nil {
		upper, cum := s.served.m.CheckDurationBuckets(outcome)
		return upper, cum, nil
	}
	var b bucketsJSON
	if err := s.get(ctx, "/buckets?outcome="+outcome, &b); err != nil {
		return nil, nil, err
	}
	return append(b.Upper, math.Inf(1)), b.Cumulative, nil
}

// takeCommits puts the group commits since the last take into res.
func (s *phaseServer) takeCommits(ctx context.Context, res *Result) error {
	if s.served != nil {
		s.served.commits.take(res)
		return nil
	}
	var c commitsJSON
	if err := s.get(ctx, "/commits", &c); err != nil {
		return err
	}
	res.Commits, res.WritesPerCommit, res.CommitP50, res.CommitP99 = c.Commits, c.WritesPerCommit, c.CommitP50, c.CommitP99
	return nil
}

// profileCPU starts a CPU profile of a server process; the function returned stops it and
// writes it to file. It does nothing for a server in this process, which the bench's own
// profile (Config.OnPhase) holds.
func (s *phaseServer) profileCPU(ctx context.Context, file string, progress io.Writer) func() {
	if s.pid == 0 || file == "" {
		return nil
	}
	report := func(err error) {
		if progress != nil {
			fmt.Fprintf(progress, "no CPU profile of the server process: %v\n", err)
		}
	}
	if err := s.do(ctx, http.MethodPost, "/cpuprofile", io.Discard); err != nil {
		report(err)
		return nil
	}
	return func() {
		f, err := os.Create(file)
		if err == nil {
			err = s.do(ctx, http.MethodGet, "/cpuprofile", f)
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			report(err)
		} else if progress != nil {
			fmt.Fprintf(progress, "CPU profile of the server process: %s\n", file)
		}
	}
}

func (s *phaseServer) get(ctx context.Context, path string, v any) error {
	var body bytes.Buffer
	if err := s.do(ctx, http.MethodGet, path, &body); err != nil {
		return err
	}
	return json.Unmarshal(body.Bytes(), v)
}

// do sends a request to the server process's bench address and copies the answer to out.
func (s *phaseServer) do(ctx context.Context, method, path string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.benchAddr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bench: the server process: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: the server process: %s %s: %s", method, path, resp.Status)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}

// rss returns the resident set and its peak (VmRSS, VmHWM) of the server, in bytes.
func (s *phaseServer) rss() (rss, peak int64) {
	path := "/proc/self/status"
	if s.pid != 0 {
		path = "/proc/" + strconv.Itoa(s.pid) + "/status"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		name, value, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak
}

// clockTick is the unit of /proc/<pid>/stat's CPU times: USER_HZ, 100 on every Linux the
// bench runs on (sysconf(_SC_CLK_TCK) needs cgo).
const clockTick = 10 * time.Millisecond

// pidCPU is the user and system CPU time process pid has used, from /proc/<pid>/stat, to
// the clock tick; 0 where there is no /proc.
func pidCPU(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields follow its last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * clockTick
}

// measureRecovery times the recovery of a balance proof's signer (its digest and the
// secp256k1 recovery, as a paid check makes them) on one goroutine for about d, and returns
// the CPU time per recovery.
func (fx *Fixture) measureRecovery(d time.Duration) (time.Duration, error) {
	b := rdn.Balance{Receiver: fx.Receiver, OpenBlock: fx.openBlock, Balance: big.NewInt(Price), Contract: fx.Contract}
	sig, err := b.Sign(fx.keys[0])
	if err != nil {
		return 0, err
	}
	n := 0
	cpu, end := processCPU(), time.Now().Add(d)
	for ; n < 100 || time.Now().Before(end); n++ {
		if _, err := b.Signer(sig[:]); err != nil {
			return 0, err
		}
	}
	return (processCPU() - cpu) / time.Duration(n), nil
}
