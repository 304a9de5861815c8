package admin_test

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// scrape reads /metrics and returns the value of every sample, keyed by name and labels
// as name{k="v",...} (labels in Prometheus's order).
func (h *harness) scrape() map[string]float64 {
	h.t.Helper()
	r := h.do("GET", "/metrics", testToken, "")
	if r.status != 200 {
		h.t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(r.body)))
	if err != nil {
		h.t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

func TestMetricsFollowPayments(t *testing.T) {
	s := newScenario(t)
	m := s.scrape()
	want := map[string]float64{
		"uraiden_payments_accepted_total":                                    3,
		"uraiden_tokens_earned_total":                                        15,
		`uraiden_check_decisions_total{flag="",outcome="paid",status="200"}`: 3,
		`uraiden_check_duration_seconds{outcome="paid"}`:                     3, // histogram: sample count
		`uraiden_channels{state="open"}`:                                     3,
		`uraiden_channels{state="closing"}`:                                  0,
		"uraiden_unique_senders":                                             2,
		"uraiden_chain_head_block":                                           float64(s.head()),
		"uraiden_ledger_sync_block":                                          float64(s.head()),
		"uraiden_ledger_confirmed_block":                                     float64(s.head() - confirmations),
		"uraiden_chain_sync_lag_blocks":                                      0,
		`uraiden_watchtower_transactions_total{result="mined"}`:              0,
		"uraiden_ledger_up":                                                  1,
		"uraiden_chain_healthy":                                              1,
		"uraiden_chain_side":                                                 1,
		`uraiden_watchtower_disputes{status="sent"}`:                         0,
		`uraiden_watchtower_disputes{status="failed"}`:                       0,
		"uraiden_watchtower_disputes_past_deadline":                          0,
		"uraiden_receiver_eth_min_balance_wei":                               1e16, // config.yaml's 0.01 ETH
	}
	// The dev chain funds the receiver with ETH; the float is the watcher's last read.
	if bal, err := s.chain.Client().BalanceAt(context.Background(), s.receiver(), nil); err != nil {
		t.Fatal(err)
	} else if f, _ := new(big.Float).SetInt(bal).Float64(); m["uraiden_receiver_eth_balance_wei"] != f {
		t.Errorf("uraiden_receiver_eth_balance_wei = %v, the chain says %v", m["uraiden_receiver_eth_balance_wei"], f)
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m["uraiden_ledger_commit_duration_seconds"] < 3 || m["uraiden_ledger_commit_writes"] < 3 {
		t.Errorf("ledger commits observed: %v, writes histogram %v", m["uraiden_ledger_commit_duration_seconds"], m["uraiden_ledger_commit_writes"])
	}

	// A payment on B, a quote, a proof signed by a stranger, and a watchtower transaction.
	if st := s.pay(s.b, 5); st != 200 {
		t.Fatalf("payment on B: %d", st)
	}
	stranger := s.b
	stranger.key = s.account(3)
	if st := s.pay(stranger, 10); st != 402 {
		t.Fatalf("stranger's proof: %d", st)
	}
	s.srv.Metrics.WatchtowerTransaction("mined")
	m = s.scrape()
	want = map[string]float64{
		"uraiden_payments_accepted_total":                                                                4,
		"uraiden_tokens_earned_total":                                                                    20,
		`uraiden_check_decisions_total{flag="",outcome="paid",status="200"}`:                             4,
		`uraiden_check_decisions_total{flag="RDN-Invalid-Balance-Proof",outcome="refused",status="402"}`: 1,
		`uraiden_watchtower_transactions_total{result="mined"}`:                                          1,
	}
	for k, v := range want {
		if got := m[k]; got != v {
			t.Errorf("after more traffic: %s = %v, want %v", k, got, v)
		}
	}

	// Ready: /readyz and the gRPC health status agree.
	if r := s.do("GET", "/readyz", "", ""); r.status != 200 {
		t.Errorf("/readyz: %d %s", r.status, r.body)
	}
	if st := grpcHealth(t, s.srv.Addr()); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health: %v", st)
	}
}

func grpcHealth(t *testing.T, addr string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetStatus()
}

// A receiver without the ETH to dispute a close is alive but not ready, on HTTP and gRPC.
func TestNotReadyWithoutDisputeFunds(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Chain.MinReceiverETH = "1000000000" })
	h.start()
	if r := h.do("GET", "/healthz", "", ""); r.status != 200 {
		t.Errorf("/healthz: %d", r.status)
	}
	r := h.do("GET", "/readyz", "", "")
	if r.status != 503 || !strings.Contains(r.errorText(t), "too low to send a dispute") {
		t.Errorf("/readyz: %d %s", r.status, r.body)
	}
	if st := grpcHealth(t, h.srv.Addr()); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC health: %v", st)
	}
}

// bareAdmin serves an admin server under prefix on a ledger holding one channel of deposit
// 50, with no chain behind it: enough for everything that neither signs nor reads the
// chain. It returns the server's base URL and the channel.
func bareAdmin(t *testing.T, prefix string, edit func(*admin.Config)) (string, rdn.ChannelID) {
	t.Helper()
	l, err := ledger.Open(ledger.Options{Dir: filepath.Join(t.TempDir(), "ledger"),
		Identity: ledger.Identity{ChainID: 1337, Contract: common.HexToAddress("0xc0"), Receiver: common.HexToAddress("0xee")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	id := rdn.ChannelID{Sender: common.HexToAddress("0xa1"), OpenBlock: 7}
	err = l.Apply(context.Background(), ledger.Update{
		Events: []ledger.Event{{Kind: ledger.Created, Channel: id, Block: 7, Amount: big.NewInt(50)}},
		Sync:   ledger.SyncState{Cursor: 9, Confirmed: 9},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := admin.Config{
		Listen: "127.0.0.1:0", Prefix: prefix, Ledger: l,
		SignClosing: func(rdn.Closing) (rdn.Signature, error) { return rdn.Signature{}, nil },
		Chain: admin.NewChainView(func(context.Context) (uint64, error) { return 9, nil },
			func(context.Context) (*big.Int, error) { return big.NewInt(0), nil }, time.Second),
		Ready: func() error { return nil },
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return "http://" + srv.Addr(), id
}

// operatorPaths are every endpoint that needs the operator token, pprof's included.
func operatorPaths(prefix string, id rdn.ChannelID) []string {
	return []string{
		prefix + "/stats", prefix + "/channels", prefix + "/channels/" + id.Sender.Hex(), "/metrics",
		"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile", "/debug/pprof/symbol",
		"/debug/pprof/trace", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=2",
	}
}

// Every operator endpoint, /metrics and each pprof one included, refuses a request without
// the token (401) or with a wrong one (403) and answers the token; pprof is not served
// unless enabled.
func TestEveryOperatorEndpointNeedsTheToken(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("m 1\n")) })
	base, id := bareAdmin(t, "/api/1", func(c *admin.Config) {
		c.OperatorToken, c.PProf, c.Metrics = testToken, true, metrics
	})
	for _, p := range operatorPaths("/api/1", id) {
		if r := do(t, "GET", base+p, "", ""); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without a token: %d", p, r.status)
		}
		for _, wrong := range []string{testToken + "x", testToken[:len(testToken)-1], strings.ToUpper(testToken)} {
			if r := do(t, "GET", base+p, wrong, ""); r.status != 403 {
				t.Errorf("%s with the wrong token %q: %d", p, wrong, r.status)
			}
		}
		if strings.Contains(p, "/profile") || strings.Contains(p, "/trace") {
			continue // they would record for 30 s; the refusals are what matters here
		}
		if r := do(t, "GET", base+p, testToken, ""); r.status != 200 {
			t.Errorf("%s with the token: %d %.200s", p, r.status, r.body)
		}
	}
	r := do(t, "GET", base+"/debug/pprof/", testToken, "")
	if !strings.Contains(string(r.body), "goroutine") {
		t.Errorf("pprof index: %.200s", r.body)
	}
	base, _ = bareAdmin(t, "/api/1", func(c *admin.Config) { c.OperatorToken = testToken })
	if r := do(t, "GET", base+"/debug/pprof/cmdline", testToken, ""); r.status != 404 {
		t.Errorf("pprof served without admin.pprof: %d", r.status)
	}
}

// Without a token every operator endpoint is refused, also on loopback; what a paying client
// needs still works. The API follows its prefix.
func TestWithoutTokenOperatorEndpointsAreRefused(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("m 1\n")) })
	base, id := bareAdmin(t, "/pay/api/", func(c *admin.Config) { c.PProf, c.Metrics = true, metrics })
	for _, p := range operatorPaths("/pay/api", id) {
		for _, token := range []string{"", testToken} {
			r := do(t, "GET", base+p, token, "")
			if r.status != 403 || !strings.Contains(r.errorText(t), "no admin token") {
				t.Errorf("%s (token %q): %d %s", p, token, r.status, r.body)
			}
		}
	}
	r := do(t, "GET", base+"/pay/api/channels/"+id.Sender.Hex()+"/7", "", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"deposit":"50"`) {
		t.Errorf("public channel view: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/api/1/stats", "", ""); r.status != 404 {
		t.Errorf("the default prefix answers under another prefix: %d", r.status)
	}
}

// Headers over the admin server's limit are answered 431 and a cooperative close's body
// over its limit 413, before anything is parsed.
func TestAdminSizeLimits(t *testing.T) {
	base, id := bareAdmin(t, "/api/1", nil)
	get := func(header int) int {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("p", header))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(8 << 10); got != 200 {
		t.Errorf("an 8 KiB header: %d", got)
	}
	if got := get(128 << 10); got != 431 {
		t.Errorf("a 128 KiB header: %d, want 431", got)
	}
	channel := fmt.Sprintf("%s/api/1/channels/%s/%d", base, id.Sender.Hex(), id.OpenBlock)
	body := `{"balance": 1, "balance_signature": "0x` + strings.Repeat("ab", 65) + `"}`
	if r := do(t, "DELETE", channel, "", body+strings.Repeat(" ", 64<<10)); r.status != 413 || !strings.Contains(r.errorText(t), "over") {
		t.Errorf("a 64 KiB close body: %d %s", r.status, r.body)
	}
	if r := do(t, "DELETE", channel, "", `{"balance": "`+strings.Repeat("0", 100)+`1", "balance_signature": "0x00"}`); r.status != 400 {
		t.Errorf("a 101-digit balance: %d %s", r.status, r.body)
	}
}
