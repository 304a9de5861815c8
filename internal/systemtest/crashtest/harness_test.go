package crashtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// The uraiden binary, built once for the whole package into binDir.
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "uraiden-crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// uraidenBinary builds cmd/uraiden on first use.
func uraidenBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "uraiden")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/uraiden/uraiden/cmd/uraiden").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// price is what one request on paidPath costs in the tests' price table.
const (
	price    = 1
	paidPath = "/paid/item"
)

func priceTable(p int) string {
	return fmt.Sprintf("default_price: 0\nrules:\n  - name: paid\n    path: \"/paid/.*\"\n    price: %d\n", p)
}

// env is a dev chain serving JSON-RPC on a loopback port, outliving the uraiden processes
// the test starts against it, with channels opened by dev accounts 1…n to account 0, the
// receiver.
type env struct {
	t        *testing.T
	chain    *devchain.Chain
	rpcURL   string
	receiver *ecdsa.PrivateKey
	channels []*payChannel
}

func startEnv(t *testing.T, channels int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, err := devchain.Start(ctx, devchain.Config{Listen: "127.0.0.1:0", Accounts: channels + 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := &env{t: t, chain: c, rpcURL: c.HTTPEndpoint(), receiver: c.Accounts()[0].Key}
	deposit := new(big.Int).Lsh(big.NewInt(1), 64)
	for _, acc := range c.Accounts()[1:] {
		cl, err := client.New(ctx, client.Config{Node: c.Client(), Key: acc.Key, Contract: e.contract()})
		if err != nil {
			t.Fatal(err)
		}
		ch, err := cl.Open(ctx, e.receiverAddress(), deposit, client.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.channels = append(e.channels, &payChannel{
			id: rdn.ChannelID{Sender: acc.Address, OpenBlock: ch.OpenBlock}, key: acc.Key,
			sent: map[int64]rdn.Signature{},
		})
	}
	return e
}

func (e *env) contract() common.Address        { return e.chain.Deployment().Channels }
func (e *env) receiverAddress() common.Address { return crypto.PubkeyToAddress(e.receiver.PublicKey) }

func (e *env) identity() ledger.Identity {
	return ledger.Identity{ChainID: devchain.ChainID, Contract: e.contract(), Receiver: e.receiverAddress()}
}

// sign is a sender's balance proof for one of its channels to the receiver. Load workers
// call it: a failure is reported with Errorf, which other goroutines may call.
func (e *env) sign(ch *payChannel, balance int64) rdn.Signature {
	sig, err := rdn.Balance{Receiver: e.receiverAddress(), OpenBlock: ch.id.OpenBlock, Balance: big.NewInt(balance), Contract: e.contract()}.Sign(ch.key)
	if err != nil {
		e.t.Errorf("sign balance %d on %s: %v", balance, ch.id, err)
	}
	return sig
}

// service is one configuration of `uraiden serve`: its directory (configuration, key file,
// price table, ledger) and loopback ports, which may be started many times.
type service struct {
	t         *testing.T
	env       *env
	dir       string
	config    string
	prices    string
	ledgerDir string
	grpcAddr  string
	adminAddr string
	runs      int
	last      *proc // the latest run
}

// serviceOptions change a service's configuration.
type serviceOptions struct {
	receiver  *ecdsa.PrivateKey // nil: the env's
	contract  common.Address    // zero: the env's
	ledgerDir string            // empty: <dir>/ledger
	minFreeMB string            // ledger.min_free_mb; empty: the default
}

func newService(t *testing.T, e *env, o serviceOptions) *service {
	t.Helper()
	dir := t.TempDir()
	s := &service{t: t, env: e, dir: dir, config: filepath.Join(dir, "config.yaml"), prices: filepath.Join(dir, "prices.yaml"),
		ledgerDir: o.ledgerDir, grpcAddr: servertest.FreeAddr(t), adminAddr: servertest.FreeAddr(t)}
	if s.ledgerDir == "" {
		s.ledgerDir = filepath.Join(dir, "ledger")
	}
	if o.receiver == nil {
		o.receiver = e.receiver
	}
	if o.contract == (common.Address{}) {
		o.contract = e.contract()
	}
	keyFile := filepath.Join(dir, "receiver.key")
	writeFile(t, keyFile, hexutil.Encode(crypto.FromECDSA(o.receiver))+"\n", 0o600)
	writeFile(t, s.prices, priceTable(price), 0o644)
	if o.minFreeMB == "" {
		o.minFreeMB = fmt.Sprint(config.Default().Ledger.MinFreeMB)
	}
	// Confirmations 0 and fast polling: channels are usable as soon as the service sees them.
	// max_head_age 0: the dev chain mines only when transactions arrive.
	writeFile(t, s.config, fmt.Sprintf(`log: {level: info, format: text}
authz: {listen: %q}
admin: {listen: %q}
pricing: {file: %q}
ledger: {dir: %q, min_free_mb: %s}
receiver: {key_file: %q}
chain:
  rpc_url: %q
  chain_id: %d
  contract_address: %q
  start_block: %d
  confirmations: 0
  poll_interval: 100ms
  max_head_age: 0s
gateway: {listen: ""}
`, s.grpcAddr, s.adminAddr, s.prices, s.ledgerDir, o.minFreeMB, keyFile, e.rpcURL, devchain.ChainID, o.contract.Hex(),
		e.chain.Deployment().ChannelsBlock), 0o600)
	return s
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// proc is one run of `uraiden serve`.
type proc struct {
	s    *service
	cmd  *exec.Cmd
	log  string // the file of its stdout and stderr
	done chan struct{}
	err  error // the exit status, once done is closed
}

// start runs the service.
func (s *service) start() *proc {
	s.t.Helper()
	s.runs++
	p := &proc{s: s, log: filepath.Join(s.dir, fmt.Sprintf("serve-%d.log", s.runs)), done: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		s.t.Fatal(err)
	}
	defer out.Close() // the child has its own copy
	p.cmd = exec.Command(uraidenBinary(s.t), "--config", s.config, "serve")
	p.cmd.Dir = s.dir
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.last = p
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	s.t.Cleanup(func() { p.kill() })
	return p
}

// output is what the run wrote to stdout and stderr so far.
func (p *proc) output() string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// lastOutput is the end of the latest run's output, for failure messages.
func (s *service) lastOutput() string {
	if s.last == nil {
		return ""
	}
	return tail(s.last.output(), 30)
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process at once (SIGKILL) and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to shut down (SIGTERM) and returns its exit error.
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		return errors.New("did not stop within 30s of SIGTERM")
	}
	return p.err
}

// wait waits for the process to end by itself and returns its exit error.
func (p *proc) wait(within time.Duration) error {
	p.s.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		p.kill()
		p.s.t.Fatalf("uraiden serve still running after %s:\n%s", within, p.output())
		return nil
	}
}

// ready waits until the admin server's /readyz answers 200: the ledger opened and takes
// writes, and the chain is followed.
func (p *proc) ready(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if p.exited() {
			return fmt.Errorf("uraiden serve exited (%v) before it was ready:\n%s", p.err, p.output())
		}
		if code, _ := p.s.get("/readyz"); code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("uraiden serve not ready within %s:\n%s", within, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustReady is ready that fails the test.
func (p *proc) mustReady() {
	p.s.t.Helper()
	if err := p.ready(60 * time.Second); err != nil {
		p.s.t.Fatal(err)
	}
}

// get fetches a path of the admin server; the status is 0 when it does not answer.
func (s *service) get(path string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + s.adminAddr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// openLedger opens the service's ledger from the test process, which the service must not
// be running to allow.
func (s *service) openLedger() (*ledger.Ledger, error) {
	return ledger.Open(ledger.Options{Dir: s.ledgerDir, Identity: s.env.identity()})
}

// authzClient connects to the service's Check over gRPC. The connection retries quickly,
// since the tests restart the service on the same port.
func (s *service) authzClient(t *testing.T) authv3.AuthorizationClient {
	t.Helper()
	bc := backoff.DefaultConfig
	bc.BaseDelay, bc.MaxDelay = 20*time.Millisecond, 50*time.Millisecond
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// check sends one Check of paidPath, with a balance proof when sig is not nil. It returns
// the HTTP status uraiden decided (200 for OK) and the response headers, or the gRPC error.
func (e *env) check(ctx context.Context, c authv3.AuthorizationClient, ch *payChannel, balance int64, sig *rdn.Signature) (int, map[string]string, error) {
	headers := map[string]string{":authority": "localhost:10000", ":method": "GET", ":path": paidPath, ":scheme": "http"}
	if sig != nil {
		headers["rdn-contract-address"] = e.contract().Hex()
		headers["rdn-receiver-address"] = e.receiverAddress().Hex()
		headers["rdn-sender-address"] = ch.id.Sender.Hex()
		headers["rdn-open-block"] = fmt.Sprint(ch.id.OpenBlock)
		headers["rdn-balance"] = fmt.Sprint(balance)
		headers["rdn-balance-signature"] = sig.Hex()
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: paidPath, Host: "localhost:10000", Scheme: "http",
			Protocol: "HTTP/1.1", Headers: headers},
	}}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		return 0, nil, err
	}
	if resp.GetStatus().GetCode() == 0 {
		return http.StatusOK, nil, nil
	}
	d := resp.GetDeniedResponse()
	out := map[string]string{"body": d.GetBody()}
	for _, h := range d.GetHeaders() {
		out[strings.ToLower(h.GetHeader().GetKey())] = h.GetHeader().GetValue()
	}
	return int(d.GetStatus().GetCode()), out, nil
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
