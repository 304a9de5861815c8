package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

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
	// In a process of its own whenever the bench can start one: the RSS is then the server's alone.
	srv, err := startPhaseServer(ctx, cfg.ServerCommand, ServeSpec{Kind: serveExisting, Dir: dir})
	if err != nil {
		return run, err
	}
	run.Ready, run.Open, run.Scan = time.Since(start), srv.open, srv.scan
	run.RSSReady, _ = srv.rss()
	fmt.Fprintf(cfg.Progress, "phase: paid (durable), ledger of %d channels\n", total)
	run.Paid, err = drive(ctx, PhaseSize, fmt.Sprintf("paid, %d channels", total), srv, cfg, fx.paidLoad(proofs, cfg.Streams))
	if err == nil {
		run.StatsP50, run.StatsP99, err = statsLatency(ctx, srv.adminAddr, 1000)
	}
	run.RSSAfter, run.RSSPeak = srv.rss()
	if serr := srv.stop(); err == nil && serr != nil {
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
