package client

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/rdn"
)

var (
	testChainID  = big.NewInt(31337)
	testContract = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	testReceiver = common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
)

func domainBody(chainID any, contract string) string {
	return fmt.Sprintf(`{"price":5,"proof_schemes":["eip712","legacy"],"eip712_domain":{"name":"uraiden","version":"1","chainId":%v,"verifyingContract":%q}}`, chainID, contract)
}

func schemesHeader(values ...string) http.Header {
	h := http.Header{}
	for _, v := range values {
		h.Add(rdn.HeaderProofSchemes, v)
	}
	return h
}

func TestChooseScheme(t *testing.T) {
	both := schemesHeader("eip712, legacy")
	ours := domainBody(31337, testContract.Hex())
	cases := []struct {
		name   string
		header http.Header
		body   string
		choice ProofScheme
		want   rdn.Scheme
		errHas string // the refusal names this; "" means no refusal
	}{
		{"auto, typed offered for our chain and contract", both, ours, ProofSchemeAuto, rdn.SchemeTyped, ""},
		{"auto, lower-case address", both, domainBody(31337, strings.ToLower(testContract.Hex())), ProofSchemeAuto, rdn.SchemeTyped, ""},
		{"auto, header split over two lines", schemesHeader("legacy", " eip712"), ours, ProofSchemeAuto, rdn.SchemeTyped, ""},
		{"auto, a µRaiden 0.2.0 server names no schemes", http.Header{}, "", ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"auto, legacy only", schemesHeader("legacy"), "", ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"auto, another chain", both, domainBody(1, testContract.Hex()), ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"auto, another contract", both, domainBody(31337, testReceiver.Hex()), ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"auto, no domain in the body", both, `{"price":5}`, ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"auto, an HTML body", both, `<html>`, ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"auto, unknown scheme names skipped", schemesHeader("eip999, legacy"), "", ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"auto, typed only but another chain", schemesHeader("eip712"), domainBody(5, testContract.Hex()), ProofSchemeAuto, 0, "chain 5"},
		{"auto, nothing known", schemesHeader("EIP712"), ours, ProofSchemeAuto, 0, "no scheme this client knows"},
		{"forced eip712", both, ours, ProofSchemeEIP712, rdn.SchemeTyped, ""},
		{"forced eip712, legacy-only server", schemesHeader("legacy"), "", ProofSchemeEIP712, 0, "the server offers legacy only"},
		{"forced eip712, µRaiden 0.2.0 server", http.Header{}, "", ProofSchemeEIP712, 0, "µRaiden 0.2.0"},
		{"forced eip712, another contract", both, domainBody(31337, testReceiver.Hex()), ProofSchemeEIP712, 0, testReceiver.Hex()},
		{"forced eip712, other domain name", both, strings.Replace(ours, `"uraiden"`, `"other"`, 1), ProofSchemeEIP712, 0, `"other"`},
		{"forced legacy against typed", both, ours, ProofSchemeLegacy, rdn.SchemeLegacy, ""},
		{"forced legacy, typed-only server", schemesHeader("eip712"), ours, ProofSchemeLegacy, 0, "offers eip712 only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why, err := readOffer(tc.header, []byte(tc.body), testChainID, testContract).choose(tc.choice)
			if tc.errHas != "" {
				var se *ProofSchemeError
				if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want a ProofSchemeError naming %q", err, tc.errHas)
				}
				return
			}
			if err != nil || got != tc.want || why == "" {
				t.Fatalf("= %s %q %v, want %s with a reason", got, why, err, tc.want)
			}
		})
	}
}

func TestParseProofScheme(t *testing.T) {
	for _, ok := range []string{"auto", "eip712", "legacy"} {
		if p, err := ParseProofScheme(ok); err != nil || string(p) != ok {
			t.Errorf("%q: %q %v", ok, p, err)
		}
	}
	for _, bad := range []string{"", "EIP712", "eip-712", "typed", " legacy", "auto "} {
		if _, err := ParseProofScheme(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A store written before typed proofs (no proof_scheme) reads as legacy; a typed proof
// survives a save and load; a legacy one is saved as before, without the field.
func TestStoreKeepsSchemes(t *testing.T) {
	sender := common.HexToAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
	path := filepath.Join(t.TempDir(), "channels.json")
	// As client/store.go wrote it before the typed scheme.
	old := fmt.Sprintf(`{"sender":%q,"contract":%q,"channels":{"%s/7":{"receiver":%q,"open_block":7,"deposit":50,"balance":10,"balance_signature":"0x%s","state":"open","api":"http://x/api/1"}}}`,
		sender.Hex(), testContract.Hex(), testReceiver.Hex(), testReceiver.Hex(), strings.Repeat("ab", 65))
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(path, sender, testContract)
	if err != nil {
		t.Fatal(err)
	}
	ch := s.Channels[testReceiver.Hex()+"/7"]
	if ch == nil || ch.Scheme != rdn.SchemeLegacy || ch.Balance.Int64() != 10 {
		t.Fatalf("old store read as %+v", ch)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), "proof_scheme") {
		t.Errorf("a legacy channel was written with proof_scheme:\n%s", data)
	}

	ch.Scheme = rdn.SchemeTyped
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), `"proof_scheme": "eip712"`) {
		t.Errorf("a typed channel was written without its scheme:\n%s", data)
	}
	s, err = OpenStore(path, sender, testContract)
	if err != nil || s.Channels[testReceiver.Hex()+"/7"].Scheme != rdn.SchemeTyped {
		t.Fatalf("reloaded: %v %+v", err, s.Channels)
	}

	bad := strings.Replace(old, `"state"`, `"proof_scheme":"EIP712","state"`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(path, sender, testContract); err == nil || !strings.Contains(err.Error(), "proof scheme") {
		t.Errorf("a store with an unknown scheme: %v", err)
	}
}

// fakeServer answers 402 with the offer given, verifies payments in the scheme their
// RDN-Proof-Scheme names (absent: legacy), as authz does, and records each scheme paid.
type fakeServer struct {
	t       *testing.T
	schemes string // RDN-Proof-Schemes; "" sends none
	body    string // the 402's JSON body
	sender  common.Address

	mu      sync.Mutex
	paid    []rdn.Scheme
	headers []string // RDN-Proof-Scheme as sent
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	quote := func() {
		w.Header().Set(rdn.HeaderPrice, "5")
		w.Header().Set(rdn.HeaderReceiverAddress, testReceiver.Hex())
		w.Header().Set(rdn.HeaderContractAddress, testContract.Hex())
		w.Header().Set(rdn.HeaderGatewayPath, "/api/1")
		if f.schemes != "" {
			w.Header().Set(rdn.HeaderProofSchemes, f.schemes)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusPaymentRequired)
		io.WriteString(w, f.body)
	}
	sigText := r.Header.Get(rdn.HeaderBalanceSignature)
	if sigText == "" {
		quote()
		return
	}
	scheme, err := rdn.ParseScheme(cmp.Or(r.Header.Get(rdn.HeaderProofScheme), rdn.SchemeLegacyName))
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	sig, _ := rdn.ParseSignature(sigText)
	balance, _ := new(big.Int).SetString(r.Header.Get(rdn.HeaderBalance), 10)
	block, _ := strconv.ParseUint(r.Header.Get(rdn.HeaderOpenBlock), 10, 32)
	signer, err := rdn.Balance{Receiver: testReceiver, OpenBlock: uint32(block), Balance: balance, Contract: testContract,
		Scheme: scheme, ChainID: testChainID.Uint64()}.Signer(sig[:])
	if err != nil || signer != f.sender {
		w.Header().Set(rdn.FlagInvalidProof, "1")
		quote()
		return
	}
	f.mu.Lock()
	f.paid = append(f.paid, scheme)
	f.headers = append(f.headers, r.Header.Get(rdn.HeaderProofScheme))
	f.mu.Unlock()
	io.WriteString(w, "ok")
}

// offlineClient is a Client with one open channel to testReceiver in memory and no node:
// enough to sign and send payments that the channel covers.
func offlineClient(t *testing.T, choice ProofScheme, deposit int64) *Client {
	t.Helper()
	key, _ := crypto.GenerateKey()
	sender := crypto.PubkeyToAddress(key.PublicKey)
	store, _ := OpenStore("", sender, testContract)
	ch := &Channel{Receiver: testReceiver, OpenBlock: 7, Deposit: big.NewInt(deposit), Balance: new(big.Int), State: StateOpen}
	store.Channels[ch.Key()] = ch
	return &Client{chainID: testChainID, key: key, sender: sender, contract: contracts.Contract{Address: testContract},
		scheme: choice, log: slog.New(slog.DiscardHandler), store: store}
}

func (c *Client) fakeGet(t *testing.T, rt http.RoundTripper, url string) error {
	t.Helper()
	resp, err := (&http.Client{Transport: rt}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s", resp.Status, body)
	}
	return nil
}

// The transport pays in the scheme the offer and the choice give, names a typed proof in
// RDN-Proof-Scheme and sends no such header with a legacy one, and keeps the scheme with
// the channel's proof.
func TestTransportPaysInTheChosenScheme(t *testing.T) {
	cases := []struct {
		name, schemes, body string
		choice              ProofScheme
		want                rdn.Scheme
		header              string
	}{
		{"auto, typed offered", "eip712, legacy", domainBody(31337, testContract.Hex()), ProofSchemeAuto, rdn.SchemeTyped, "eip712"},
		{"auto, legacy only", "legacy", `{"price":5}`, ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"auto, no header", "", `{"price":5}`, ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"auto, domain of another chain", "eip712, legacy", domainBody(1, testContract.Hex()), ProofSchemeAuto, rdn.SchemeLegacy, ""},
		{"forced legacy", "eip712, legacy", domainBody(31337, testContract.Hex()), ProofSchemeLegacy, rdn.SchemeLegacy, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := offlineClient(t, tc.choice, 50)
			f := &fakeServer{t: t, schemes: tc.schemes, body: tc.body, sender: c.sender}
			srv := httptest.NewServer(f)
			defer srv.Close()
			rt := c.Transport(TransportConfig{})
			for range 2 {
				if err := c.fakeGet(t, rt, srv.URL+"/x"); err != nil {
					t.Fatal(err)
				}
			}
			if len(f.paid) != 2 || f.paid[0] != tc.want || f.paid[1] != tc.want || f.headers[0] != tc.header {
				t.Errorf("paid in %v with RDN-Proof-Scheme %q, want %s with %q", f.paid, f.headers, tc.want, tc.header)
			}
			ch, _ := c.Channel(testReceiver, 7)
			if ch.Scheme != tc.want || ch.Balance.Int64() != 10 {
				t.Errorf("stored %s at %s", ch.Scheme, ch.Balance)
			}
			if s, why := rt.ProofScheme(); s != tc.want || why == "" {
				t.Errorf("ProofScheme() = %s %q", s, why)
			}
		})
	}
}

// Forcing eip712 against a server without it fails before anything is signed, saying why.
func TestForcedTypedAgainstLegacyServer(t *testing.T) {
	c := offlineClient(t, ProofSchemeEIP712, 50)
	f := &fakeServer{t: t, schemes: "legacy", body: `{"price":5}`, sender: c.sender}
	srv := httptest.NewServer(f)
	defer srv.Close()
	err := c.fakeGet(t, c.Transport(TransportConfig{}), srv.URL+"/x")
	var se *ProofSchemeError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "proof scheme eip712 cannot be used: the server offers legacy only") {
		t.Fatalf("err = %v", err)
	}
	if ch, _ := c.Channel(testReceiver, 7); ch.Balance.Sign() != 0 || ch.Signature != "" || len(f.paid) != 0 {
		t.Errorf("signed anyway: %+v, paid %v", ch, f.paid)
	}
}

// A channel whose last proof is legacy goes on in typed proofs when the server offers them,
// from the balance already signed.
func TestTransportSwitchesToTyped(t *testing.T) {
	c := offlineClient(t, ProofSchemeAuto, 50)
	f := &fakeServer{t: t, schemes: "legacy", body: `{}`, sender: c.sender}
	srv := httptest.NewServer(f)
	defer srv.Close()
	rt := c.Transport(TransportConfig{})
	if err := c.fakeGet(t, rt, srv.URL+"/x"); err != nil {
		t.Fatal(err)
	}
	f.schemes, f.body = "eip712, legacy", domainBody(31337, testContract.Hex()) // the server is upgraded
	if err := c.fakeGet(t, rt, srv.URL+"/x"); err != nil {
		t.Fatal(err)
	}
	ch, _ := c.Channel(testReceiver, 7)
	if len(f.paid) != 2 || f.paid[0] != rdn.SchemeLegacy || f.paid[1] != rdn.SchemeTyped || ch.Scheme != rdn.SchemeTyped || ch.Balance.Int64() != 10 {
		t.Errorf("paid %v; stored %s at %s", f.paid, ch.Scheme, ch.Balance)
	}
}

// A 402 that is handed back to the caller keeps its whole body, though the transport read
// the offer from it.
func TestGiveUpKeepsThe402Body(t *testing.T) {
	c := offlineClient(t, ProofSchemeAuto, 50)
	body := domainBody(31337, testContract.Hex())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(rdn.HeaderPrice, "5")
		w.Header().Set(rdn.HeaderReceiverAddress, testReceiver.Hex())
		w.Header().Set(rdn.HeaderContractAddress, testContract.Hex())
		w.Header().Set(rdn.HeaderProofSchemes, "eip712, legacy")
		if r.Header.Get(rdn.HeaderBalanceSignature) != "" {
			w.Header().Set(rdn.FlagInvalidProof, "1")
		}
		w.WriteHeader(http.StatusPaymentRequired)
		io.WriteString(w, body)
	}))
	defer srv.Close()
	resp, err := (&http.Client{Transport: c.Transport(TransportConfig{})}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPaymentRequired || string(got) != body {
		t.Errorf("%s %q", resp.Status, got)
	}
}

// The server's proof is adopted only when it verifies in the scheme its RDN-Proof-Scheme
// names: a typed signature presented as legacy (or the reverse) is refused.
func TestAdoptChecksTheServersScheme(t *testing.T) {
	c := offlineClient(t, ProofSchemeAuto, 50)
	typed, err := c.signAt(Channel{Receiver: testReceiver, OpenBlock: 7}, big.NewInt(20), rdn.SchemeTyped)
	if err != nil {
		t.Fatal(err)
	}
	rt := c.Transport(TransportConfig{})
	p := &payment{receiver: testReceiver, openBlock: 7}
	header := func(scheme string) http.Header {
		h := http.Header{}
		h.Set(rdn.HeaderSenderBalance, "20")
		h.Set(rdn.HeaderBalanceSignature, typed.Hex())
		if scheme != "" {
			h.Set(rdn.HeaderProofScheme, scheme)
		}
		return h
	}
	for _, wrong := range []string{"", "legacy", "EIP712"} {
		if err := rt.adopt(p, header(wrong)); !errors.Is(err, ErrBadServerProof) {
			t.Errorf("typed proof with RDN-Proof-Scheme %q: %v", wrong, err)
		}
	}
	if err := rt.adopt(p, header("eip712")); err != nil {
		t.Fatal(err)
	}
	ch, _ := c.Channel(testReceiver, 7)
	if ch.Balance.Int64() != 20 || ch.Scheme != rdn.SchemeTyped || ch.Signature != typed.Hex() {
		t.Errorf("adopted %+v", ch)
	}
}
