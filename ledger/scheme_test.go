package ledger

import (
	"context"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/uraiden/uraiden/rdn"
)

func payIn(t *testing.T, l *Ledger, id rdn.ChannelID, balance, price int64, scheme rdn.Scheme) PayResult {
	t.Helper()
	r, err := l.Pay(context.Background(), Payment{ID: id, Balance: big.NewInt(balance), Signature: sig(balance + 1_000_000*int64(scheme)),
		Scheme: scheme, Price: big.NewInt(price)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The channel keeps the scheme of its highest proof, durably, and a balance value buys one
// request whatever scheme it is signed in.
func TestPaymentKeepsItsScheme(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	create(t, l, alice, 100, 10)
	if r := payIn(t, l, alice, 10, 10, rdn.SchemeTyped); r.Outcome != Accepted || r.Scheme != rdn.SchemeTyped {
		t.Fatalf("typed payment: %v in %v", r.Outcome, r.Scheme)
	}
	if r := payIn(t, l, alice, 10, 10, rdn.SchemeLegacy); r.Outcome != InvalidAmount || r.Scheme != rdn.SchemeTyped {
		t.Errorf("the same balance signed in the other scheme: %v, stored proof in %v", r.Outcome, r.Scheme)
	}
	if r := payIn(t, l, alice, 20, 10, rdn.SchemeLegacy); r.Outcome != Accepted || r.Scheme != rdn.SchemeLegacy {
		t.Errorf("legacy payment after a typed one: %v in %v", r.Outcome, r.Scheme)
	}
	if r := payIn(t, l, alice, 30, 10, rdn.SchemeTyped); r.Outcome != Accepted {
		t.Fatalf("typed payment: %v", r.Outcome)
	}
	l.Close()
	l = openDir(t, dir)
	defer l.Close()
	c, _ := l.Channel(alice)
	if c.Balance.Int64() != 30 || c.Scheme != rdn.SchemeTyped || c.Signature != sig(30+1_000_000) {
		t.Errorf("after reopen: balance %v in %v", c.Balance, c.Scheme)
	}
}

// A cooperative close is signed in the scheme asked for; asked in the other one it is signed
// again, and the record keeps the latest with its scheme.
func TestCloseInEitherScheme(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	create(t, l, alice, 100, 10)
	payIn(t, l, alice, 30, 30, rdn.SchemeTyped)
	var s countingSigner
	ctx := context.Background()
	legacy, err := l.CloseCooperatively(ctx, alice, big.NewInt(30), rdn.SchemeLegacy, s.sign)
	if err != nil || legacy != sig(1030) {
		t.Fatalf("legacy close: %v %v", legacy, err)
	}
	typed, err := l.CloseCooperatively(ctx, alice, big.NewInt(30), rdn.SchemeTyped, s.sign)
	if err != nil || typed != sig(1_001_030) {
		t.Fatalf("typed close: %v %v", typed, err)
	}
	again, err := l.CloseCooperatively(ctx, alice, big.NewInt(30), rdn.SchemeTyped, s.sign)
	if err != nil || again != typed || s.calls.Load() != 2 {
		t.Errorf("typed close asked again: %v %v, %d signatures made", again, err, s.calls.Load())
	}
	if _, err := l.CloseCooperatively(ctx, alice, big.NewInt(30), rdn.Scheme(9), s.sign); err == nil {
		t.Error("a close in an unknown scheme was signed")
	}
	l.Close()
	l = openDir(t, dir)
	defer l.Close()
	c, _ := l.Channel(alice)
	if c.State != StateClosing || c.ClosingSignature != typed || c.ClosingScheme != rdn.SchemeTyped {
		t.Errorf("after reopen: %v, closing signature in %v", c.State, c.ClosingScheme)
	}
}

// Records written before the schemes (versions 2 and 3, from commit 58f9c10) read as legacy,
// and a record whose signatures are all legacy is still written in the old versions, which
// older binaries read.
func TestRecordsBeforeSchemes(t *testing.T) {
	const (
		v2 = "0202080de0b6b3a7640000000201f400000000000000000000000000000000000000000000000000000000000001f400000000000000000000000000000000000000000000000000000000000000001b016400010201f4000000000000000000000000000000000000000000000000000000000000000000000700000000000000000000000000000000000000000000000000000000000000001b"
		v3 = "0302080de0b6b3a7640000000201f400000000000000000000000000000000000000000000000000000000000001f400000000000000000000000000000000000000000000000000000000000000001b016400010201f4000000000000000000000000000000000000000000000000000000000000000000000700000000000000000000000000000000000000000000000000000000000000001b010201f40102000000000000000000000000000080d095ffbc3101"
	)
	for name, text := range map[string]string{"v2": v2, "v3": v3} {
		data, _ := hex.DecodeString(text)
		c, err := unmarshalChannel(alice, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Scheme != rdn.SchemeLegacy || c.ClosingScheme != rdn.SchemeLegacy || c.Balance.Int64() != 500 || c.ClosingSignature != sig(7) {
			t.Errorf("%s: %+v", name, c)
		}
		if got := hex.EncodeToString(c.marshal()); got != text {
			t.Errorf("%s written again as\n%s, not\n%s", name, got, text)
		}
	}
}

func TestSchemeEncoding(t *testing.T) {
	c := newChannel(alice, big.NewInt(1e18))
	c.accept(big.NewInt(500), sig(500), rdn.SchemeTyped, big.NewInt(100))
	data := c.marshal()
	if data[0] != encodingVersionSchemes {
		t.Fatalf("a typed proof written in version %d", data[0])
	}
	got, err := unmarshalChannel(alice, data)
	if err != nil || got.Scheme != rdn.SchemeTyped || got.ClosingScheme != rdn.SchemeLegacy {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	c.Retries = []Retry{{Balance: bal256(500), Key: RetryKey{9}, At: time.UnixMilli(1), Served: 2}}
	c.ClosingSignature, c.ClosingScheme = sig(8), rdn.SchemeTyped
	if got, err := unmarshalChannel(alice, c.marshal()); err != nil || len(got.Retries) != 1 || got.ClosingScheme != rdn.SchemeTyped {
		t.Errorf("with retries and a typed close: %+v %v", got, err)
	}
	bad := c.marshal()
	bad[len(bad)-1] = 7
	if _, err := unmarshalChannel(alice, bad); err == nil {
		t.Error("an unknown scheme decoded")
	}
	if _, err := unmarshalChannel(alice, c.marshal()[:len(c.marshal())-1]); err == nil {
		t.Error("a record cut in its schemes decoded")
	}
}
