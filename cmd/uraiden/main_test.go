package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/internal/dev/devtools"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
)

// repoRoot holds config.yaml and prices.yaml; the configuration's relative paths are
// relative to the working directory, as for a user running the README's commands there.
var repoRoot, _ = filepath.Abs("../..")

// run executes the CLI in-process with the repository's config.yaml and returns its output.
func run(ctx context.Context, args ...string) (string, error) {
	var out servertest.SyncBuffer
	err := execute(ctx, &out, args...)
	return out.String(), err
}

func execute(ctx context.Context, out io.Writer, args ...string) error {
	cmd := newRootCmd()
	cmd.SetArgs(append([]string{"--config", filepath.Join(repoRoot, "config.yaml")}, args...))
	cmd.SetOut(out)
	cmd.SetErr(out)
	return cmd.ExecuteContext(ctx)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func rpc(t *testing.T, url, method string, params ...any) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Result string `json:"result"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: %s", method, raw)
	}
	return r.Result
}

// `uraiden devchain` serves a chain a JSON-RPC client can query, with both contracts deployed.
func TestDevchainCommand(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out servertest.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- execute(ctx, &out, "devchain", "--listen", addr, "--accounts", "2") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devchain exited with %v", err)
		}
	}()

	tokenRe := regexp.MustCompile(`token:\s+(0x[0-9a-fA-F]{40})`)
	waitPrinted(t, &out, contractPrinted)
	text := out.String()
	if !strings.Contains(text, "DEV ONLY") || strings.Count(text, " key 0x") != 2 {
		t.Errorf("dev accounts not printed as expected:\n%s", text)
	}
	url := "http://" + addr
	if got := rpc(t, url, "eth_chainId"); got != "0x539" {
		t.Errorf("eth_chainId = %s", got)
	}
	for _, re := range []*regexp.Regexp{contractPrinted, tokenRe} {
		a := re.FindStringSubmatch(text)[1]
		if code := rpc(t, url, "eth_getCode", a, "latest"); len(code) < 100 {
			t.Errorf("no code at %s", a)
		}
	}
}

// `uraiden deploy` against a real node, with a new token and then with an existing one.
func TestDeployCommand(t *testing.T) {
	node := devtools.StartAnvil(t)
	keyFile := filepath.Join(t.TempDir(), "deployer.key")
	if err := os.WriteFile(keyFile, []byte("0x"+devtools.AnvilKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t.Context(), "deploy", "--rpc", node.HTTP, "--key-file", keyFile, "--challenge-period", "600",
		"--token-name", "Test Token", "--token-symbol", "TTT", "--supply", "1000", "--chain-id", "31337")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`contract_address: (0x[0-9a-fA-F]{40})`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "chain_id: 31337") || !strings.Contains(out, "rpc_url: "+node.HTTP) {
		t.Fatalf("output is not config.yaml settings:\n%s", out)
	}
	c, err := chain.Dial(t.Context(), node.HTTP, chain.Expect{ChainID: 31337, Contract: common.HexToAddress(m[1])})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Contract.ChallengePeriod != 600 {
		t.Errorf("challenge period %d", c.Contract.ChallengePeriod)
	}

	out, err = run(t.Context(), "deploy", "--rpc", node.WS, "--key-file", keyFile, "--token-address", c.Contract.Token.Hex())
	if err != nil || !strings.Contains(out, "# Token: "+c.Contract.Token.Hex()) {
		t.Fatalf("deploy on an existing token: %v\n%s", err, out)
	}
}

func TestDeployRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	open := filepath.Join(dir, "open.key")
	os.WriteFile(good, []byte(devtools.AnvilKey), 0o600)
	os.WriteFile(open, []byte(devtools.AnvilKey), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--key-file", good}, `required flag(s) "rpc" not set`},
		{[]string{"--rpc", "http://127.0.0.1:1", "--key-file", open, "--token-name", "a", "--token-symbol", "b"}, "readable by group or others"},
		{[]string{"--rpc", "http://127.0.0.1:1", "--key-file", good}, "give --token-address, or --token-name and --token-symbol"},
		{[]string{"--rpc", "http://127.0.0.1:1", "--key-file", good, "--token-address", "0x12"}, "--token-address: not an address"},
		{[]string{"--rpc", "http://127.0.0.1:1", "--key-file", good, "--token-name", "a", "--token-symbol", "b", "--supply", "-3"}, "--supply"},
		{[]string{"--rpc", "http://127.0.0.1:1", "--key-file", good, "--token-name", "a", "--token-symbol", "b", "--challenge-period", "10"}, "at least 500"},
		{[]string{"--rpc", "http://127.0.0.1:1", "--key-file", good, "--token-name", "a", "--token-symbol", "b"}, "127.0.0.1:1"},
	} {
		out, err := run(t.Context(), append([]string{"deploy"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("deploy %v: err = %v, want %q\n%s", tc.args, err, tc.want, out)
		}
		if strings.Contains(out, devtools.AnvilKey) || (err != nil && strings.Contains(err.Error(), devtools.AnvilKey)) {
			t.Errorf("deploy %v printed the private key", tc.args)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	t.Chdir(repoRoot)
	if out, err := run(t.Context(), "config", "check"); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("the shipped config.yaml does not pass: %v\n%s", err, out)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad-prices.yaml"), []byte("default_price: 0\nrules:\n  - name: broken\n    path: \"/a(\"\n    price: 1\n"), 0o600)
	openKey := filepath.Join(dir, "open.key")
	os.WriteFile(openKey, []byte(strings.Repeat("ab", 32)), 0o644)
	for _, tc := range []struct{ yaml, want string }{
		{"log:\n  levle: info\n", "invalid keys: levle"},
		{"nosuch: 1\n", "invalid keys: nosuch"},
		{"chain:\n  rpc_url: http://127.0.0.1:8545\n", "chain.chain_id: required with chain.rpc_url"},
		{"chain:\n  contract_address: 0x1234\n", "chain.contract_address: not a hex address"},
		{"devchain:\n  challenge_period: 10\n", "devchain.challenge_period: must be at least 500"},
		{"devchain:\n  block_period: soon\n", "block_period"},
		{"log:\n  level: loud\n", "log.level"},
		{"chain:\n  rpc_url: http://127.0.0.1:8545\n  chain_id: 1\n  contract_address: \"0x0000000000000000000000000000000000000001\"\n", "receiver.key_file: required"},
		{"chain:\n  min_receiver_eth: lots\n", "chain.min_receiver_eth"},
		{"authz:\n  listen: nowhere\n", "authz.listen"},
		{"pricing:\n  file: " + filepath.Join(dir, "bad-prices.yaml") + "\n", `rule 1 "broken": path`},
		{"receiver:\n  key_file: " + openKey + "\n", "receiver.key_file: " + openKey + " is readable by group or others"},
		{"authz:\n  tls:\n    cert_file: server.crt\n", "authz.tls: cert_file needs key_file"},
		{"admin:\n  tls:\n    cert_file: /nonexistent.crt\n    key_file: /nonexistent.key\n", "admin.tls: cert_file: open /nonexistent.crt"},
		{"authz:\n  max_request_bytes: 1000\n", "authz.max_request_bytes: must be between"},
		{"ledger:\n  backend: etcd\n", "ledger.etcd.endpoints: required with ledger.backend etcd"},
		{"ledger:\n  backend: etcd\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n    password: hunter2\n", "ledger.etcd.password: not accepted"},
		{"ledger:\n  backend: etcd\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n    username: uraiden\n    password_file: " + openKey + "\n",
			"ledger.etcd.password_file: " + openKey + " is readable by group or others"},
		{"ledger:\n  backend: etcd\n  etcd:\n    endpoints: [https://127.0.0.1:2379]\n    tls:\n      ca_file: /nonexistent.crt\n", "ledger.etcd.tls: ca_file: open /nonexistent.crt"},
		{"ledger:\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n", "ledger.etcd.endpoints: set, but ledger.backend is badger"},
	} {
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte(tc.yaml), 0o600)
		cmd := newRootCmd()
		cmd.SetArgs([]string{"config", "check", "--config", path})
		cmd.SetOut(io.Discard)
		if err := cmd.ExecuteContext(t.Context()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
	// A priced rule whose other methods are free passes, with a warning; the shipped
	// table has none.
	if out, _ := run(t.Context(), "config", "check"); strings.Contains(out, "warning") {
		t.Errorf("the shipped prices.yaml has warnings:\n%s", out)
	}
	getOnly := filepath.Join(dir, "get-only.yaml")
	os.WriteFile(getOnly, []byte("default_price: 0\nrules:\n  - {name: echofix, methods: [GET, HEAD], path: \"/echofix/[^/]+\", price: 5}\n"), 0o600)
	path := filepath.Join(dir, "warn.yaml")
	os.WriteFile(path, []byte("pricing:\n  file: "+getOnly+"\n"), 0o600)
	var out, errOut strings.Builder
	cmd := newRootCmd()
	cmd.SetArgs([]string{"config", "check", "--config", path})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.ExecuteContext(t.Context()); err != nil || !strings.Contains(out.String(), "OK") ||
		!strings.Contains(errOut.String(), `warning: `+getOnly+`: rule 1 "echofix" prices GET, HEAD only: POST, PUT`) {
		t.Errorf("a GET-only priced rule over a free default: %v\n%s\n%s", err, &out, &errOut)
	}

	// Prices in tokens: converted with the dev chain's 18 decimals, or --token-decimals; on
	// another chain without the flag, checked for syntax only, and said so.
	keyFile := filepath.Join(dir, "receiver.key")
	os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)), 0o600)
	realChain := "chain:\n  rpc_url: http://127.0.0.1:1\n  chain_id: 1\n  contract_address: \"0x0000000000000000000000000000000000000001\"\nreceiver:\n  key_file: " + keyFile + "\n"
	tokens := filepath.Join(dir, "tokens.yaml")
	os.WriteFile(tokens, []byte("default_price: 0\nrules:\n  - name: fine\n    path: /a\n    price: 0.0000001 token\n"), 0o600)
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("default_price: 0\nrules:\n  - name: typo\n    path: /a\n    price: 0.5 tokn\n"), 0o600)
	for _, tc := range []struct {
		yaml  string
		flags []string
		want  string // in the output, or in the error when fail
		fail  bool
	}{
		{"pricing:\n  file: " + tokens + "\n", nil,
			"prices in tokens: 1, converted with 18 decimals, the dev chain's token", false},
		{"pricing:\n  file: " + tokens + "\n", []string{"--token-decimals", "6"},
			tokens + `:5: rule 1 "fine": price: "0.0000001 token" is not a whole number of base units: the token has 6 decimals`, true},
		{realChain + "pricing:\n  file: " + tokens + "\n", nil,
			"prices in tokens: 1, syntax checked, not converted: the service converts them at start with the token's decimals() read from the chain", false},
		{realChain + "pricing:\n  file: " + tokens + "\n", []string{"--token-decimals", "7"},
			"prices in tokens: 1, converted with 7 decimals, --token-decimals", false},
		{realChain + "pricing:\n  file: " + tokens + "\n", []string{"--token-decimals", "2"},
			"the token has 2 decimals", true},
		{realChain + "pricing:\n  file: " + typo + "\n", nil, typo + `:5: rule 1 "typo": price: "0.5 tokn": unknown unit "tokn"`, true},
		{"pricing:\n  file: " + typo + "\n", nil, `unknown unit "tokn"`, true},
	} {
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte(tc.yaml), 0o600)
		var out strings.Builder
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"config", "check", "--config", path}, tc.flags...))
		cmd.SetOut(&out)
		cmd.SetErr(io.Discard)
		err := cmd.ExecuteContext(t.Context())
		switch {
		case tc.fail && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q %v: err = %v, want %q", tc.yaml, tc.flags, err, tc.want)
		case !tc.fail && (err != nil || !strings.Contains(out.String(), tc.want)):
			t.Errorf("%q %v: err = %v, output:\n%s\nwant %q", tc.yaml, tc.flags, err, &out, tc.want)
		}
	}

	// The environment overrides the file, and is validated too.
	t.Setenv("URAIDEN_DEVCHAIN_ACCOUNTS", "0")
	if _, err := run(t.Context(), "config", "check"); err == nil || !strings.Contains(err.Error(), "devchain.accounts") {
		t.Errorf("URAIDEN_DEVCHAIN_ACCOUNTS=0: err = %v", err)
	}
}

// The help lists the commands by role, each under its group's title, and hides the old
// 'channels' parent of close-all, which still runs and says what it is now.
func TestHelpGroups(t *testing.T) {
	out, err := run(t.Context(), "--help")
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string][]string{
		"Paying (a client of a uraiden server):":              {"channel", "get", "prices"},
		"Operating (the receiver's server and its channels):": {"backup", "close-all", "config", "deploy", "restore", "resync", "serve", "withdraw"},
		"Development:":         {"bench", "demo", "devchain"},
		"Additional Commands:": {"completion", "help", "version"},
	}
	// Each group's block: its title, then its commands, up to a blank line.
	blocks := map[string][]string{}
	for _, block := range strings.Split(out, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if _, ok := groups[lines[0]]; !ok {
			continue
		}
		for _, l := range lines[1:] {
			blocks[lines[0]] = append(blocks[lines[0]], strings.Fields(l)[0])
		}
	}
	for title, want := range groups {
		if got := blocks[title]; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("group %q lists %v, want %v\n%s", title, got, want, out)
		}
	}
	if regexp.MustCompile(`(?m)^  channels\b`).MatchString(out) {
		t.Errorf("the help lists the hidden channels command:\n%s", out)
	}
	t.Setenv("URAIDEN_CHAIN_RPC_URL", "")
	out, err = run(t.Context(), "channels", "close-all")
	if err == nil || !strings.Contains(err.Error(), "chain.rpc_url is not set") || !strings.Contains(out, "is now 'uraiden close-all'") {
		t.Errorf("uraiden channels close-all: err = %v\n%s", err, out)
	}
}
