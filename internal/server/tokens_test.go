package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

// Prices in tokens are converted with the decimals the dev chain's token answers (18), in
// the 402 quote as in the table, and every reload converts with them too; a price finer
// than a base unit is refused, at start with its file, line and rule.
func TestTokenPricesOnTheDevChain(t *testing.T) {
	c := servertest.DevChain(t, 1)
	dir := t.TempDir()
	prices := writeFile(t, dir, "prices.yaml", "default_price: 0\nrules:\n"+
		"  - {name: fix, path: /fix, price: 0.005 token}\n"+
		"  - {name: whole, path: /whole, price: 2 tokens}\n"+
		"  - {name: base, path: /base, price: 7}\n")
	cfg := servertest.Config(t, prices)
	cfg.Authz.HTTPListen = "127.0.0.1:0"
	var logs servertest.SyncBuffer
	srv, err := server.StartWith(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), server.Options{DevChain: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	table := srv.Prices.Current()
	if tok, ok := table.Token(); !ok || tok.Decimals != 18 {
		t.Fatalf("the table's token: %+v, %v; want the dev token's 18 decimals", tok, ok)
	}
	price := func(path string) string {
		t.Helper()
		q, err := srv.Prices.Current().Quote(&pricing.Request{Method: "GET", Path: path})
		if err != nil {
			t.Fatalf("Quote(%s): %v", path, err)
		}
		return q.Price.String()
	}
	for path, want := range map[string]string{"/fix": "5000000000000000", "/whole": "2000000000000000000", "/base": "7"} {
		if got := price(path); got != want {
			t.Errorf("%s costs %s base units, want %s", path, got, want)
		}
	}
	// The wire format is base units.
	resp, err := http.Get("http://" + srv.HTTPAuthzAddr() + "/envoy/fix")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 402 || resp.Header.Get(rdn.HeaderPrice) != "5000000000000000" {
		t.Errorf("GET /fix: %d, %s %q; want a 402 quote of 5000000000000000\n%s", resp.StatusCode, rdn.HeaderPrice, resp.Header.Get(rdn.HeaderPrice), body)
	}

	// A reload converts with the same decimals; an inexact one is refused and the table stays.
	// reload replaces the file and waits until the watcher took it or logged why not.
	reload := func(content string) {
		t.Helper()
		gen, rejected := srv.Prices.Generation(), strings.Count(logs.String(), "price table rejected")
		tmp := prices + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, prices); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for srv.Prices.Generation() == gen && strings.Count(logs.String(), "price table rejected") == rejected {
			if time.Now().After(deadline) {
				t.Fatalf("the watcher neither reloaded nor rejected the file; log:\n%s", logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	reload("default_price: 0\nrules:\n  - {name: fix, path: /fix, price: 0.0000000000000000001 token}\n")
	if got := price("/fix"); got != "5000000000000000" {
		t.Errorf("after an inexact reload /fix costs %s, want the previous 5000000000000000", got)
	}
	reload("default_price: 0\nrules:\n  - {name: fix, path: /fix, price: 0.25 token}\n")
	if got := price("/fix"); got != "250000000000000000" {
		t.Errorf("after a reload /fix costs %s, want 250000000000000000", got)
	}

	// At start, the same inexact price refuses to serve, saying where.
	bad := writeFile(t, dir, "bad.yaml", "default_price: 0\nrules:\n  - name: tiny\n    path: /tiny\n    price: 0.0000000000000000001 token\n")
	cfg = servertest.Config(t, bad)
	_, err = server.StartWith(context.Background(), cfg, slog.New(slog.DiscardHandler), server.Options{DevChain: c})
	want := bad + `:5: rule 1 "tiny": price: "0.0000000000000000001 token" is not a whole number of base units: the token has 18 decimals`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("start with an inexact price: %v\nwant it to contain %s", err, want)
	}
}

// The decimals are read from the token; a contract with no decimals() is not an error, as
// only prices in tokens need them.
func TestTokenDecimals(t *testing.T) {
	c := servertest.DevChain(t, 1)
	d, ok, err := chain.TokenDecimals(t.Context(), c.Client(), c.Deployment().Token)
	if err != nil || !ok || d != 18 {
		t.Errorf("decimals() of the dev token: %d, %v, %v; want 18", d, ok, err)
	}
	d, ok, err = chain.TokenDecimals(t.Context(), c.Client(), c.Deployment().Channels)
	if err != nil || ok {
		t.Errorf("decimals() of the channel contract, which has none: %d, %v, %v; want not ok, no error", d, ok, err)
	}
}

// The symbol is read from the token too, for the discovery document; a contract without
// symbol() has none, which is not an error either.
func TestTokenSymbol(t *testing.T) {
	c := servertest.DevChain(t, 1)
	s, ok, err := chain.TokenSymbol(t.Context(), c.Client(), c.Deployment().Token)
	if err != nil || !ok || s != devchain.TokenSymbol {
		t.Errorf("symbol() of the dev token: %q, %v, %v; want %s", s, ok, err, devchain.TokenSymbol)
	}
	s, ok, err = chain.TokenSymbol(t.Context(), c.Client(), c.Deployment().Channels)
	if err != nil || ok {
		t.Errorf("symbol() of the channel contract, which has none: %q, %v, %v; want not ok, no error", s, ok, err)
	}
}
