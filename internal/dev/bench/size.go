package bench

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// SizeRun is the measurement of one ledger size: a server over a ledger of Channels
// channels, of which the fixture's channels are paid by the load and the rest have one
// payment each and stay untouched.
type SizeRun struct {
	Channels int
	Filled   time.Duration // creating the ledger (not part of any target)
	// Ready is from starting the server until it serves; Open and Scan are its parts:
	// opening the ledger, and the scan of every channel record the watchtower makes at
	// start.
	Ready, Open, Scan time.Duration
	// RSS of the server when ready and after the load, and its peak (VmHWM), in bytes.
	RSSReady, RSSAfter, RSSPeak int64
	// InProcess: the server ran inside the bench, so the RSS figures are the whole
	// process's, load generator included.
	InProcess bool
	Paid      Result
	// Stats is the latency of GET /api/1/stats.
	StatsP50, StatsP99 time.Duration
}

// ServerCommand starts a server over a ledger directory in another process (the bench
// command runs itself with --serve-ledger): the RSS measured is then the server's alone.
type ServerCommand func(dir string) *exec.Cmd

// fillChunk is how many channels one ledger update creates while filling.
const fillChunk = 20_000

// FillLedger creates a ledger in dir with the fixture's channels and enough others to make
// total, each of those with one payment so that its record is as large as a used channel's.
// The others' senders are made-up addresses: nothing pays on them during the bench. It
// writes without fsync, then makes every file durable: filling is not what is measured.
func (fx *Fixture) FillLedger(ctx context.Context, dir string, total int, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	l, err := ledger.Open(ledger.Options{Dir: dir, Identity: fx.Identity(), NoSync: true})
	if err != nil {
		return err
	}
	if err := fx.createChannels(l, fx.senders); err != nil {
		l.Close()
		return err
	}
	for from := len(fx.senders); from < total && ctx.Err() == nil; from += fillChunk {
		senders := make([]common.Address, 0, fillChunk)
		for i := from; i < min(total, from+fillChunk); i++ {
			senders = append(senders, fillerSender(i))
		}
		if err := fx.createChannels(l, senders); err != nil {
			l.Close()
			return err
		}
		if err := fx.payOnce(ctx, l, senders); err != nil {
			l.Close()
			return err
		}
		if n := from + len(senders); n%200_000 < fillChunk {
			fmt.Fprintf(progress, "  %d channels\n", n)
		}
	}
	if err := l.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The measurement's fsyncs should not wait behind the kernel writing the fill out.
	return syncFiles(dir)
}

// syncFiles makes every file in dir durable.
func syncFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		err = errors.Join(f.Sync(), f.Close())
		if err != nil {
			return fmt.Errorf("bench: sync the filled ledger: %w", err)
		}
	}
	return nil
}

// fillerSender is the made-up sender of filler channel i.
func fillerSender(i int) common.Address {
	h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("uraiden bench filler"), uint64(i)))
	return common.BytesToAddress(h[:20])
}

// payOnce pays once on each channel of the senders, with a stand-in signature (the ledger
// stores proofs, it is the authz service that verifies them), from enough goroutines to
// fill the ledger's batches.
func (fx *Fixture) payOnce(ctx context.Context, l *ledger.Ledger, senders []common.Address) error {
	var sig rdn.Signature
	sig[64] = 27
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 512)
	for w := range errs {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(senders) && errs[w] == nil; i = int(next.Add(1) - 1) {
				r, err := l.Pay(ctx, ledger.Payment{ID: rdn.ChannelID{Sender: senders[i], OpenBlock: fx.openBlock},
					Balance: big.NewInt(Price), Signature: sig, Price: big.NewInt(Price)})
				if err == nil && r.Outcome != ledger.Accepted {
					err = fmt.Errorf("bench: filling: payment %v", r.Outcome)
				}
				errs[w] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ServeLedger serves the bench's authz service and the admin API over the ledger in dir,
// as a server would at start: it opens the ledger, makes the watchtower's scan, then
// serves, and tells ready where. It returns when ctx ends.
func ServeLedger(ctx context.Context, dir string, ready func(grpcAddr, adminAddr string, open, scan time.Duration)) error {
	fx := &Fixture{}
	fx.setAddresses()
	var l *ledger.Ledger
	m := newMetrics(func() *ledger.Ledger { return l })
	start := time.Now()
	l, err := ledger.Open(ledger.Options{Dir: dir, Identity: fx.Identity(), OnCommit: m.ObserveCommit})
	if err != nil {
		return err
	}
	defer l.Close()
	open := time.Since(start)
	if _, err := chain.ResumeCandidates(l); err != nil {
		return err
	}
	debug.FreeOSMemory() // as the server does after it
	scan := time.Since(start) - open
	srv, err := serve("127.0.0.1:0", fx.serviceOver(l, m), codecOptions(true)...)
	if err != nil {
		return err
	}
	defer srv.close()
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
		return err
	}
	if err := adm.Start(); err != nil {
		return err
	}
	defer adm.Close(context.Background())
	ready(srv.addr, adm.Addr(), open, scan)
	<-ctx.Done()
	return nil
}

// statsToken is the operator token of the bench's admin API.
const statsToken = "bench-operator-token"

// readyLine is what a server process prints once it serves.
func readyLine(grpcAddr, adminAddr string, open, scan time.Duration) string {
	return fmt.Sprintf("ready grpc=%s admin=%s open=%s scan=%s", grpcAddr, adminAddr, open, scan)
}

// PrintReady writes ServeLedger's ready line for a parent bench to read.
func PrintReady(w io.Writer) func(string, string, time.Duration, time.Duration) {
	return func(grpcAddr, adminAddr string, open, scan time.Duration) {
		fmt.Fprintln(w, readyLine(grpcAddr, adminAddr, open, scan))
	}
}

// sizeServer is a running ServeLedger, in this process or another.
type sizeServer struct {
	grpcAddr, adminAddr string
	open, scan          time.Duration
	pid                 int // 0 in process
	stop                func() error
}

// startSizeServer starts a server over dir and waits until it serves.
func startSizeServer(ctx context.Context, dir string, command ServerCommand) (*sizeServer, error) {
	if command == nil {
		ctx, cancel := context.WithCancel(ctx)
		readyCh := make(chan *sizeServer, 1)
		done := make(chan error, 1)
		go func() {
			done <- ServeLedger(ctx, dir, func(g, a string, open, scan time.Duration) {
				readyCh <- &sizeServer{grpcAddr: g, adminAddr: a, open: open, scan: scan}
			})
		}()
		select {
		case s := <-readyCh:
			s.stop = func() error { cancel(); return <-done }
			return s, nil
		case err := <-done:
			cancel()
			return nil, err
		}
	}
	cmd := command(dir)
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
		return cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("bench: the server process did not start: %w", err)
	}
	s := &sizeServer{pid: cmd.Process.Pid, stop: stop}
	if err := s.parseReady(strings.TrimSpace(line)); err != nil {
		stop()
		return nil, err
	}
	go io.Copy(io.Discard, stdout)
	return s, nil
}

func (s *sizeServer) parseReady(line string) error {
	fields := strings.Fields(line)
	if len(fields) != 5 || fields[0] != "ready" {
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
		case "open":
			s.open, err = time.ParseDuration(v)
		case "scan":
			s.scan, err = time.ParseDuration(v)
		}
		if err != nil {
			return fmt.Errorf("bench: the server process said %q: %w", line, err)
		}
	}
	return nil
}

// rss returns the resident set and its peak (VmRSS, VmHWM) of the server, in bytes.
func (s *sizeServer) rss() (rss, peak int64) {
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

// runSize fills a ledger of total channels, starts a server over it, drives the durable
// paid load at it and reads its statistics.
func (fx *Fixture) runSize(ctx context.Context, cfg Config, proofs *Proofs, total int) (SizeRun, error) {
	run := SizeRun{Channels: total, InProcess: cfg.ServerCommand == nil}
	dir, err := os.MkdirTemp("", "uraiden-bench-")
	if err != nil {
		return run, err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(cfg.Progress, "filling a ledger of %d channels…\n", total)
	start := time.Now()
	if err := fx.FillLedger(ctx, dir, total, cfg.Progress); err != nil {
		return run, err
	}
	run.Filled = time.Since(start)
	start = time.Now()
	srv, err := startSizeServer(ctx, dir, cfg.ServerCommand)
	if err != nil {
		return run, err
	}
	run.Ready, run.Open, run.Scan = time.Since(start), srv.open, srv.scan
	run.RSSReady, _ = srv.rss()
	fmt.Fprintf(cfg.Progress, "phase: paid (durable), ledger of %d channels\n", total)
	run.Paid, err = drive(ctx, PhaseSize, fmt.Sprintf("paid, %d channels", total), srv.grpcAddr, cfg, fx.paidLoad(proofs, cfg.Streams))
	if err == nil {
		run.StatsP50, run.StatsP99, err = statsLatency(ctx, srv.adminAddr, 1000)
	}
	run.RSSAfter, run.RSSPeak = srv.rss()
	if serr := srv.stop(); err == nil && serr != nil && !isInterrupted(serr) {
		err = serr
	}
	return run, err
}

func isInterrupted(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit)
}

// statsLatency GETs /api/1/stats n times, one after another, and returns the median and
// 99th percentile.
func statsLatency(ctx context.Context, addr string, n int) (p50, p99 time.Duration, err error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/1/stats", nil)
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+statsToken)
		t := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("bench: GET /api/1/stats: %s", resp.Status)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	return lat[n/2], lat[min(n-1, n*99/100)], nil
}
