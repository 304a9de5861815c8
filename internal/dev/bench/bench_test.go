package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestRunSmoke runs every phase briefly on few channels: it checks that the bench works,
// never how fast.
func TestRunSmoke(t *testing.T) {
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{Streams: 4, Conns: 2, Duration: time.Second, Channels: 8, Proofs: 4000, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Result{rep.DoNothing, rep.Quotes, rep.Paid, rep.PaidNoSync} {
		if r.Checks == 0 || r.Errors != 0 || r.Rate() <= 0 {
			t.Errorf("%s: %d checks, %d errors (%s)", r.Name, r.Checks, r.Errors, r.FirstErr)
		}
		if r.P50 <= 0 || r.P50 > r.P90 || r.P90 > r.P99 {
			t.Errorf("%s: percentiles %s %s %s", r.Name, r.P50, r.P90, r.P99)
		}
	}
	for name, v := range map[string]float64{"paid/do-nothing": rep.PaidVsDoNothing(), "quotes/do-nothing": rep.QuotesVsDoNothing(), "durable/non-durable": rep.DurableVsNoSync()} {
		if v <= 0 {
			t.Errorf("%s = %v", name, v)
		}
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"do-nothing", "402 quotes", "paid (durable)", "paid (no sync)", "paid/do-nothing", "durable/non-durable"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCodecBothSmoke runs the no-sync phase with each codec: both phases answer every
// check and the report compares them. An unknown codec is refused.
func TestCodecBothSmoke(t *testing.T) {
	rep, err := Run(context.Background(), Config{Streams: 4, Conns: 2, Duration: 500 * time.Millisecond, Channels: 8,
		Proofs: 2000, Phases: []string{PhaseNoSync}, Codec: CodecBoth})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Result{rep.PaidNoSyncStandard, rep.PaidNoSync} {
		if r.Checks == 0 || r.Errors != 0 {
			t.Errorf("%q: %d checks, %d errors (%s)", r.Name, r.Checks, r.Errors, r.FirstErr)
		}
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"paid (no sync, standard)", "paid (no sync, uraiden)", "uraiden/standard codec"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := Run(context.Background(), Config{Codec: "gob"}); err == nil || !strings.Contains(err.Error(), "gob") {
		t.Fatalf("unknown codec: %v", err)
	}
}

// TestSizeSmoke runs the ledger-size phase alone, in process, on a small "large" ledger: it
// checks that both servers start, serve paid checks and /api/1/stats, and report their
// start and memory, never how fast.
func TestSizeSmoke(t *testing.T) {
	rep, err := Run(context.Background(), Config{Streams: 4, Conns: 2, Duration: time.Second, Channels: 8, Proofs: 2000,
		LedgerChannels: 3000, Phases: []string{PhaseSize}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Paid.Name != "" || rep.DoNothing.Name != "" || len(rep.Sizes) != 2 {
		t.Fatalf("phases run: paid %q, do-nothing %q, %d sizes", rep.Paid.Name, rep.DoNothing.Name, len(rep.Sizes))
	}
	for i, want := range []int{8, 3000} {
		s := rep.Sizes[i]
		if s.Channels != want || !s.InProcess || s.Paid.Checks == 0 || s.Paid.Errors != 0 {
			t.Errorf("size %d: %d channels, %d checks, %d errors (%s)", want, s.Channels, s.Paid.Checks, s.Paid.Errors, s.Paid.FirstErr)
		}
		if s.Ready <= 0 || s.Open <= 0 || s.Ready < s.Open || s.RSSReady <= 0 || s.RSSPeak < s.RSSAfter || s.StatsP50 <= 0 || s.StatsP99 < s.StatsP50 {
			t.Errorf("size %d: %+v", want, s)
		}
	}
	var out bytes.Buffer
	rep.Print(&out)
	if !strings.Contains(out.String(), "RSS ready") || strings.Contains(out.String(), "do-nothing") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestRunNeedsAChannelPerStream(t *testing.T) {
	if _, err := Run(context.Background(), Config{Streams: 4, Channels: 2, Duration: time.Second}); err == nil {
		t.Fatal("Run accepted fewer channels than streams")
	}
}

// TestWriteGhz checks that the file is a JSON list of distinct proofs the service accepts.
func TestWriteGhz(t *testing.T) {
	fx, err := NewFixture(3)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := fx.WriteGhz(context.Background(), &buf, 10)
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("wrote %d requests, want at least 10", n)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != n {
		t.Fatalf("the file holds %d requests, WriteGhz said %d", len(list), n)
	}
	svc, l, err := fx.Service(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seen := map[string]bool{}
	for i, raw := range list {
		var req authv3.CheckRequest
		if err := protojson.Unmarshal(raw, &req); err != nil {
			t.Fatal(err)
		}
		sig := req.GetAttributes().GetRequest().GetHttp().GetHeaders()["rdn-balance-signature"]
		if seen[sig] {
			t.Fatalf("request %d repeats a proof", i)
		}
		seen[sig] = true
		resp, err := svc.Check(context.Background(), &req)
		if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
			t.Fatalf("request %d: %v %v", i, resp.GetDeniedResponse().GetBody(), err)
		}
	}
}

// TestRunEtcdSmoke runs the durable phase against Badger and the etcd store (three members
// in process) in one run: it checks that both pay without errors and that the report sets
// etcd beside Badger, never how fast.
func TestRunEtcdSmoke(t *testing.T) {
	rep, err := Run(context.Background(), Config{Streams: 4, Conns: 2, Duration: time.Second, Channels: 8, Proofs: 4000,
		Phases: []string{PhaseDurable}, Ledger: LedgerBoth})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Result{rep.Paid, rep.PaidEtcd} {
		if r.Checks == 0 || r.Errors != 0 || r.Commits == 0 {
			t.Errorf("%s: %d checks, %d errors (%s), %d commits", r.Name, r.Checks, r.Errors, r.FirstErr, r.Commits)
		}
	}
	if rep.EtcdVsBadger() <= 0 {
		t.Errorf("etcd/Badger = %v", rep.EtcdVsBadger())
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"paid (durable)", "paid (etcd, 3 members)", "etcd/Badger"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunRefusesAnUnknownLedger(t *testing.T) {
	if _, err := Run(context.Background(), Config{Streams: 4, Channels: 8, Duration: time.Second, Ledger: "sqlite"}); err == nil {
		t.Fatal("Run accepted an unknown ledger")
	}
}

// --no-request-id takes x-request-id out of the paid requests, and only then: without it a
// payment remembers no retry, which is what the switch compares.
func TestNoRequestID(t *testing.T) {
	fx, err := NewFixture(1)
	if err != nil {
		t.Fatal(err)
	}
	proofs, err := fx.SignProofs(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, noID := range []bool{false, true} {
		fx.noRequestID = noID
		req, next := fx.paidLoad(proofs, 1).newStream(0)
		next()
		headers := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
		if _, has := headers["x-request-id"]; has == noID || headers["rdn-balance"] == "" {
			t.Errorf("NoRequestID %v: headers %v", noID, headers)
		}
	}
}
