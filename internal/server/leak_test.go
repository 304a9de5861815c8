package server_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/keys"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// secretForms are the ways a secret could be printed: the key's hex (case-insensitive, so
// with or without 0x and in any case), its scalar in decimal (what %v of an
// *ecdsa.PrivateKey shows) and its bytes in base64 (what encoding/json does with []byte);
// the password and the token as they are.
func secretForms(key []byte, d *big.Int, plain ...string) []string {
	forms := []string{hex.EncodeToString(key), d.String(), base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key)}
	return append(forms, plain...)
}

// leaked returns the forms found in text.
func leaked(text string, forms []string) []string {
	var found []string
	lower := strings.ToLower(text)
	for _, f := range forms {
		if strings.Contains(text, f) || strings.Contains(lower, strings.ToLower(f)) {
			found = append(found, f[:8]+"…")
		}
	}
	return found
}

// The receiver's key, its keystore password and the operator token appear nowhere: not in
// the debug log (text and JSON) of a start from key files, paid requests, a cooperative
// close, a watchtower dispute, refused requests and a shutdown; not in any answer of the
// gRPC, HTTP and admin servers, the operator's views, /metrics and pprof (cmdline, the
// goroutine dump, heap) included; not in the errors of failed starts.
func TestReceiverKeyNeverLeaks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := devchain.Start(ctx, devchain.Config{Accounts: 3, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d := c.Deployment()
	receiverKey, payer := c.Accounts()[2].Key, c.Accounts()[1].Key
	receiver := crypto.PubkeyToAddress(receiverKey.PublicKey)
	const password, token = "keystore-password-7c1f0e", "operator-token-5b9d2a7e11"
	forms := secretForms(crypto.FromECDSA(receiverKey), receiverKey.D, password, token)

	dir := t.TempDir()
	keyFile, passwordFile := writeKeystore(t, dir, receiverKey, password)
	cfg := servertest.Config(t, "../../prices.yaml")
	cfg.Log.Level = "debug"
	cfg.Chain.RPCURL, cfg.Chain.ChainID, cfg.Chain.ContractAddress = c.HTTPEndpoint(), devchain.ChainID, d.Channels.Hex()
	cfg.Chain.StartBlock, cfg.Chain.Confirmations, cfg.Chain.MaxHeadAge = d.ChannelsBlock, 0, time.Hour
	cfg.Receiver.KeyFile, cfg.Receiver.PasswordFile = keyFile, passwordFile
	cfg.Admin.Token, cfg.Admin.PProf = token, true
	cfg.Authz.HTTPListen, cfg.Gateway.Listen = "127.0.0.1:0", "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs servertest.SyncBuffer
	debug := &slog.HandlerOptions{Level: slog.LevelDebug}
	logger := slog.New(slog.NewMultiHandler(slog.NewTextHandler(&logs, debug), slog.NewJSONHandler(&logs, debug)))

	// The detector works: a key logged by mistake is found, in either format.
	var control servertest.SyncBuffer
	slog.New(slog.NewMultiHandler(slog.NewTextHandler(&control, nil), slog.NewJSONHandler(&control, nil))).Info("oops", "key", receiverKey)
	if len(leaked(control.String(), forms)) == 0 {
		t.Fatalf("the detector misses a logged key: %s", control.String())
	}

	srv, err := server.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder // every answer the servers gave
	record := func(what string, v ...any) { fmt.Fprintln(&seen, append([]any{what}, v...)...) }

	// Paid requests through the gateway (an Envoy stand-in) and a cooperative close.
	payerClient, err := client.New(ctx, client.Config{Node: c.Client(), Key: payer, Contract: d.Channels, FromBlock: d.ChannelsBlock})
	if err != nil {
		t.Fatal(err)
	}
	defer payerClient.Close()
	paying := &http.Client{Transport: payerClient.Transport(client.TransportConfig{})}
	get := func(hc *http.Client, url string, header ...string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		record(url, resp.StatusCode, resp.Header, string(body))
		return resp.StatusCode
	}
	gw := srv.Gateway.URL()
	for _, p := range []string{"/echodyn/abcd", "/echofix/x"} {
		if got := get(paying, gw+p); got != 200 {
			t.Fatalf("paid %s: %d", p, got)
		}
	}
	first := onlyChannel(t, ctx, payerClient, receiver)
	if _, err := payerClient.CloseCooperatively(ctx, receiver, first.OpenBlock, ""); err != nil {
		t.Fatal(err)
	}
	waitSettled(t, srv, rdn.ChannelID{Sender: payerClient.Sender(), OpenBlock: first.OpenBlock})

	// A cheating close on a second channel: the watchtower disputes it with the receiver's key.
	if got := get(paying, gw+"/echodyn/abcdefgh"); got != 200 {
		t.Fatalf("paid on a second channel: %d", got)
	}
	second := newestChannel(t, ctx, payerClient, receiver, first.OpenBlock)
	cheat(t, ctx, c, payer, receiver, second.OpenBlock)
	waitSettled(t, srv, rdn.ChannelID{Sender: payerClient.Sender(), OpenBlock: second.OpenBlock})
	if ds, err := srv.Ledger.Disputes(); err != nil || len(ds) != 1 {
		t.Errorf("disputes %+v, %v: want the watchtower's one", ds, err)
	}

	// Refusals and errors: unpaid, malformed and forged proofs over gRPC and HTTP, wrong tokens.
	authzClient := servertest.AuthzClient(t, srv)
	for _, headers := range []map[string]string{
		{},
		{"rdn-balance-signature": "0x12"},
		{"rdn-balance-signature": "0x" + strings.Repeat("11", 65), "rdn-sender-address": payerClient.Sender().Hex(), "rdn-open-block": fmt.Sprint(second.OpenBlock), "rdn-balance": "7"},
	} {
		headers[":path"], headers[":method"] = "/echofix/x", "GET"
		resp, err := authzClient.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/echofix/x", Host: "h", Headers: headers}}}})
		if err != nil {
			t.Fatal(err)
		}
		record("check", protojson.Format(resp))
	}
	get(http.DefaultClient, "http://"+srv.HTTPAuthzAddr()+"/envoy/echofix/x", "RDN-Balance-Signature", "0xzz")
	admin := "http://" + srv.Admin.Addr()
	for _, p := range []string{"/api/1/stats", "/debug/pprof/cmdline"} {
		get(http.DefaultClient, admin+p)
		get(http.DefaultClient, admin+p, "Authorization", "Bearer wrong-token-0123456789")
	}
	// What the operator sees, metrics and pprof included.
	for _, p := range []string{"/api/1/stats", "/api/1/channels", "/api/1/channels/" + payerClient.Sender().Hex(),
		fmt.Sprintf("/api/1/channels/%s/%d", payerClient.Sender().Hex(), second.OpenBlock), "/metrics", "/readyz",
		"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=2", "/debug/pprof/heap?debug=1",
		"/debug/pprof/symbol", "/debug/pprof/threadcreate?debug=1", "/api/1/prices", "/.well-known/uraiden", "/api/1/openapi.json"} {
		if got := get(http.DefaultClient, admin+p, "Authorization", "Bearer "+token); got != 200 {
			t.Errorf("%s: %d", p, got)
		}
	}
	// A second start on the same ledger fails (locked); so does a wrong password.
	if _, err := server.Start(ctx, cfg, logger); err == nil {
		t.Error("a second server on the same ledger started")
	} else {
		record("second start", err)
	}
	wrong := cfg
	wrong.Receiver.PasswordFile = writeFile(t, dir, "wrong-password", "not-"+password)
	wrong.Ledger.Dir = t.TempDir()
	if _, err := server.Start(ctx, wrong, logger); err == nil {
		t.Error("a wrong password started")
	} else {
		record("wrong password", err)
	}
	if err := srv.Close(); err != nil {
		t.Error(err)
	}

	log := logs.String()
	for _, want := range []string{`level=DEBUG msg=check`, `"msg":"check"`, "cooperative close signed", "disputing", "dispute transaction", strings.ToLower(receiver.Hex())} {
		if !strings.Contains(log, want) {
			t.Errorf("the debug log lacks %q: is it captured?", want)
		}
	}
	if found := leaked(log, forms); len(found) > 0 {
		t.Errorf("the log holds secrets %v", found)
	}
	if found := leaked(seen.String(), forms); len(found) > 0 {
		t.Errorf("the answers hold secrets %v", found)
	}
	// The key's Secret redacts itself wherever it is printed.
	if found := leaked(fmt.Sprintf("%v %+v %#v %s", srv.Receiver, srv.Receiver, srv.Receiver, srv.Receiver), forms); len(found) > 0 {
		t.Errorf("the server's key prints %v", found)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeKeystore writes key as a geth keystore (light scrypt) and its password file.
func writeKeystore(t *testing.T, dir string, key *ecdsa.PrivateKey, password string) (keyFile, passwordFile string) {
	t.Helper()
	id, _ := uuid.NewRandom()
	blob, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: crypto.PubkeyToAddress(key.PublicKey), PrivateKey: key},
		password, keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "receiver.json", string(blob)), writeFile(t, dir, "password", password+"\n")
}

// onlyChannel is the payer's one channel to receiver.
func onlyChannel(t *testing.T, ctx context.Context, c *client.Client, receiver common.Address) client.Channel {
	t.Helper()
	chs, err := c.Channels(ctx, &receiver)
	if err != nil || len(chs) != 1 {
		t.Fatalf("channels %+v, %v: want one", chs, err)
	}
	return chs[0]
}

// newestChannel is the payer's channel to receiver other than old.
func newestChannel(t *testing.T, ctx context.Context, c *client.Client, receiver common.Address, old uint32) client.Channel {
	t.Helper()
	chs, err := c.Channels(ctx, &receiver)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chs {
		if ch.OpenBlock != old {
			return ch
		}
	}
	t.Fatalf("no channel besides %d in %+v", old, chs)
	return client.Channel{}
}

// cheat closes the channel uncooperatively at a balance of 1, below what the sender paid.
func cheat(t *testing.T, ctx context.Context, c *devchain.Chain, sender *ecdsa.PrivateKey, receiver common.Address, openBlock uint32) {
	t.Helper()
	mgr := contracts.NewRaidenMicroTransferChannels()
	opts := bind.NewKeyedTransactor(sender, big.NewInt(devchain.ChainID))
	opts.Context = ctx
	tx, err := bind.Transact(mgr.Instance(c.Client(), c.Deployment().Channels), opts, mgr.PackUncooperativeClose(receiver, openBlock, big.NewInt(1)))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := contracts.WaitMined(ctx, c.Client(), tx.Hash()); err != nil || r.Status != 1 {
		t.Fatalf("uncooperative close: %v", err)
	}
}

// waitSettled waits for the server's ledger to see the channel settled.
func waitSettled(t *testing.T, srv *server.Server, id rdn.ChannelID) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ch, err := srv.Ledger.Channel(id)
		if err == nil && ch != nil && ch.State == ledger.StateSettled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel %v not settled: %+v, %v", id, ch, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Key and password files others can read are refused when the service starts from the
// configuration, before any chain is dialed.
func TestServeRefusesSecretFilesOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	key := devchain.DevKey(5)
	keyFile, passwordFile := writeKeystore(t, dir, key, "pw")
	hexFile := writeFile(t, dir, "receiver.hex", hex.EncodeToString(crypto.FromECDSA(key)))
	for _, c := range []struct {
		name, key, password, open string
	}{
		{"hex key", hexFile, "", hexFile},
		{"keystore", keyFile, passwordFile, keyFile},
		{"password", keyFile, passwordFile, passwordFile},
	} {
		if err := os.Chmod(c.open, 0o640); err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.Ledger.Dir, cfg.Pricing.File = t.TempDir(), "../../prices.yaml"
		cfg.Chain.RPCURL, cfg.Chain.ChainID, cfg.Chain.ContractAddress = "http://127.0.0.1:1", 1, "0x0000000000000000000000000000000000000001"
		cfg.Receiver.KeyFile, cfg.Receiver.PasswordFile = c.key, c.password
		_, err := server.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if !errors.Is(err, keys.ErrPermissions) || !strings.Contains(err.Error(), "receiver key") {
			t.Errorf("%s readable by the group: %v", c.name, err)
		}
		if err := cfg.CheckFiles(); !errors.Is(err, keys.ErrPermissions) {
			t.Errorf("%s readable by the group: config check says %v", c.name, err)
		}
		if err := os.Chmod(c.open, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
