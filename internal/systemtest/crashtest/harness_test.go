package crashtest

import (
	"crypto/ecdsa"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/testkit/proctest"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/ledger"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// price is what one request on proctest.PaidPath costs in the tests' price table.
const price = 1

// env is the dev chain, outliving the uraiden processes the tests start against it, with
// channels opened by dev accounts 1…n to account 0, the receiver.
type env = proctest.Env

func startEnv(t *testing.T, channels int) *env {
	t.Helper()
	return proctest.StartEnv(t, channels, devchain.Config{})
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
		o.receiver = e.Receiver
	}
	if o.contract == (common.Address{}) {
		o.contract = e.Contract()
	}
	keyFile := filepath.Join(dir, "receiver.key")
	writeFile(t, keyFile, hexutil.Encode(crypto.FromECDSA(o.receiver))+"\n", 0o600)
	writeFile(t, s.prices, proctest.PriceTable(price), 0o644)
	if o.minFreeMB == "" {
		o.minFreeMB = fmt.Sprint(config.Default().Ledger.MinFreeMB)
	}
	ledgerYAML := fmt.Sprintf("{dir: %q, min_free_mb: %s}", s.ledgerDir, o.minFreeMB)
	writeFile(t, s.config, e.ServeConfig(s.grpcAddr, s.adminAddr, s.prices, keyFile, ledgerYAML, o.contract), 0o600)
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
	*proctest.Proc
	s *service
}

// start runs the service.
func (s *service) start() *proc {
	s.t.Helper()
	s.runs++
	p := &proc{Proc: proctest.Start(s.t, s.dir, s.config, filepath.Join(s.dir, fmt.Sprintf("serve-%d.log", s.runs))), s: s}
	s.last = p
	return p
}

// lastOutput is the end of the latest run's output, for failure messages.
func (s *service) lastOutput() string {
	if s.last == nil {
		return ""
	}
	return proctest.Tail(s.last.Output(), 30)
}

// mustReady waits until the admin server's /readyz answers 200 (the ledger opened and
// takes writes, and the chain is followed), and fails the test when it does not.
func (p *proc) mustReady() {
	p.s.t.Helper()
	if err := p.Ready(p.s.adminAddr, 60*time.Second); err != nil {
		p.s.t.Fatal(err)
	}
}

// get fetches a path of the admin server; the status is 0 when it does not answer.
func (s *service) get(path string) (int, string) { return proctest.Get(s.adminAddr, path) }

// openLedger opens the service's ledger from the test process, which the service must not
// be running to allow.
func (s *service) openLedger() (*ledger.Ledger, error) {
	return ledger.Open(ledger.Options{Dir: s.ledgerDir, Identity: s.env.Identity()})
}

// authzClient connects to the service's Check over gRPC.
func (s *service) authzClient(t *testing.T) authv3.AuthorizationClient {
	t.Helper()
	return proctest.AuthzClient(t, s.grpcAddr)
}
