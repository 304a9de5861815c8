// Package config loads uraiden's configuration: config.yaml, then URAIDEN_* environment
// variables, then command-line flags, each overriding the one before. Unknown keys and bad
// values are errors, reported all at once.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/tlsconf"
	"github.com/uraiden/uraiden/keys"
)

// Config is the whole configuration. Field tags are the YAML keys.
type Config struct {
	Log      Log      `mapstructure:"log"`
	Authz    Authz    `mapstructure:"authz"`
	Admin    Admin    `mapstructure:"admin"`
	Pricing  Pricing  `mapstructure:"pricing"`
	Ledger   Ledger   `mapstructure:"ledger"`
	Receiver Receiver `mapstructure:"receiver"`
	Chain    Chain    `mapstructure:"chain"`
	DevChain DevChain `mapstructure:"devchain"`
	Gateway  Gateway  `mapstructure:"gateway"`
}

// Gateway configures the local HTTP gateway, an Envoy stand-in for development.
type Gateway struct {
	// Listen is its host:port; GatewayAuto serves on DefaultGatewayListen when serve runs
	// the embedded dev chain it started, and none otherwise; empty serves none.
	Listen string `mapstructure:"listen"`
	// Upstream is the URL allowed requests go to; empty is the built-in demo upstream.
	Upstream string `mapstructure:"upstream"`
}

// GatewayAuto and DefaultGatewayListen: see Gateway.Listen.
const (
	GatewayAuto          = "auto"
	DefaultGatewayListen = "127.0.0.1:8080"
)

// Authz configures the ext_authz gRPC service.
type Authz struct {
	Listen string `mapstructure:"listen"`
	// GatewayPath is where clients reach the /api/1 channel API (RDN-Gateway-Path).
	GatewayPath string `mapstructure:"gateway_path"`
	// HTTPListen serves the same decisions over plain HTTP, for Envoy's http_service and
	// forward-auth proxies (Caddy, Traefik); empty serves none.
	HTTPListen string `mapstructure:"http_listen"`
	// MaxRequestBytes bounds a CheckRequest (gRPC) and an HTTP check's headers.
	MaxRequestBytes int `mapstructure:"max_request_bytes"`
	// RetryWindow is how long after a payment a retry of its request (same Idempotency-Key or
	// x-request-id, same route) is served again uncharged; 0 serves none (docs/protocol.md §8).
	RetryWindow time.Duration `mapstructure:"retry_window"`
	// TLS secures both listeners.
	TLS TLS `mapstructure:"tls"`
}

// Bounds of Authz.MaxRequestBytes. Envoy's headers are limited to 60 KiB by default
// (max_request_headers_kb), so a lower bound would refuse requests Envoy lets through; the
// upper one keeps a single request from taking a sizeable share of memory.
const (
	DefaultMaxRequestBytes = 1 << 20
	MinMaxRequestBytes     = 64 << 10
	MaxMaxRequestBytes     = 64 << 20
)

// Authz.RetryWindow's default and bound: long enough for Envoy's retry of a Check and a
// client's quick retry after a timeout; the bound keeps a captured request and its key from
// being worth anything for long (docs/protocol.md §8).
const (
	DefaultRetryWindow = 30 * time.Second
	MaxRetryWindow     = 10 * time.Minute
)

// TLS names a listener's certificate, its key and, for mTLS, the CA client certificates
// must chain to; all empty serves plain TCP.
type TLS struct {
	CertFile     string `mapstructure:"cert_file"`
	KeyFile      string `mapstructure:"key_file"`
	ClientCAFile string `mapstructure:"client_ca_file"`
}

// Files converts to what tlsconf loads.
func (t TLS) Files() tlsconf.Files { return tlsconf.Files(t) }

// Admin configures the HTTP admin server: the /api/1 API, probes, metrics and pprof.
type Admin struct {
	// Listen is its host:port; empty serves no admin server.
	Listen string `mapstructure:"listen"`
	// PathPrefix mounts the /api/1 API; empty means Authz.GatewayPath, so that Envoy can
	// forward the RDN-Gateway-Path clients are given unchanged.
	PathPrefix string `mapstructure:"path_prefix"`
	// Token (or the content of TokenFile) is the operator's bearer token.
	Token     string `mapstructure:"token"`
	TokenFile string `mapstructure:"token_file"`
	PProf     bool   `mapstructure:"pprof"`
	TLS       TLS    `mapstructure:"tls"`
	// LegacyClose accepts a cooperative close with the balance proof alone (µRaiden 0.2.0's
	// clients), without the sender's close request: whoever holds the sender's latest proof
	// can then close the channel.
	LegacyClose bool `mapstructure:"legacy_close"`
}

// Warnings are settings that are valid but weaken a guarantee, for `config check` and the
// log at start.
func (c Config) Warnings() []string {
	var out []string
	if c.Admin.LegacyClose && c.Admin.Listen != "" {
		out = append(out, "admin.legacy_close is on: a cooperative close needs only the sender's balance proof, "+
			"so anyone who saw the latest one (a replayed proof's 402 returns it) can close a sender's channel")
	}
	if e := c.Ledger.Etcd; c.Ledger.Backend == BackendEtcd && e.Username != "" && !e.HTTPS() {
		for _, ep := range e.Endpoints {
			if u, err := url.Parse(ep); err == nil && !isLoopback(u.Hostname()) {
				out = append(out, "ledger.etcd.password_file: the password goes in clear over http:// to "+u.Host+": use https:// endpoints")
				break
			}
		}
	}
	return out
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MinTokenLength is the shortest operator token accepted.
const MinTokenLength = 16

// APIPrefix is where the /api/1 API is mounted.
func (c Config) APIPrefix() string {
	if c.Admin.PathPrefix != "" {
		return c.Admin.PathPrefix
	}
	return c.Authz.GatewayPath
}

// OperatorToken returns the operator token: admin.token, or the content of
// admin.token_file (which must not be readable by group or others); empty when neither is
// set.
func (a Admin) OperatorToken() (string, error) {
	if a.TokenFile == "" {
		return a.Token, nil
	}
	token, err := keys.ReadSecret(a.TokenFile)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	if len(token) < MinTokenLength {
		return "", fmt.Errorf("admin.token_file: the token must be at least %d characters", MinTokenLength)
	}
	return token, nil
}

// Pricing names the price table.
type Pricing struct {
	File string `mapstructure:"file"`
}

// Ledger configures the ledger: the embedded Badger one, or the replicated one on etcd.
type Ledger struct {
	// Backend is BackendBadger or BackendEtcd.
	Backend string `mapstructure:"backend"`
	// Dir is Badger's data directory (BackendBadger only).
	Dir string `mapstructure:"dir"`
	// MinFreeMB is the free space (MiB) the ledger's file system must keep for payments to
	// be taken; 0 turns the check off. BackendBadger only: etcd's members watch their own
	// disks (their quota), and an etcd ledger ignores it.
	MinFreeMB uint64 `mapstructure:"min_free_mb"`
	// Etcd is the cluster of BackendEtcd.
	Etcd Etcd `mapstructure:"etcd"`
}

// The ledger backends.
const (
	BackendBadger = "badger"
	BackendEtcd   = "etcd"
)

// Etcd configures the connection to the etcd cluster that holds a replicated ledger.
type Etcd struct {
	// Endpoints are the members' client URLs, all http:// or all https://.
	Endpoints []string `mapstructure:"endpoints"`
	// Prefix roots the ledger's keys; the ledger adds <chain id>/<contract>/<receiver>/.
	Prefix string `mapstructure:"prefix"`
	// DialTimeout bounds reaching the cluster at start (and fetching an auth token).
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	// RequestTimeout bounds each etcd request; a payment that hits it is refused with 503.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	// Username, with the password in PasswordFile, authenticates to a cluster with auth
	// enabled. There is no inline password: it would end up in files and environments that
	// are shared more widely than a chmod 600 file.
	Username     string  `mapstructure:"username"`
	PasswordFile string  `mapstructure:"password_file"`
	TLS          EtcdTLS `mapstructure:"tls"`
}

// EtcdTLS is the client side of TLS to etcd: the CA its members' certificates chain to
// (empty: the system's roots), a client certificate and key for mTLS, and the name the
// members' certificates must hold when it is not the endpoints' host.
type EtcdTLS struct {
	CAFile     string `mapstructure:"ca_file"`
	CertFile   string `mapstructure:"cert_file"`
	KeyFile    string `mapstructure:"key_file"`
	ServerName string `mapstructure:"server_name"`
}

// Files converts to what tlsconf loads.
func (t EtcdTLS) Files() tlsconf.ClientFiles { return tlsconf.ClientFiles(t) }

// HTTPS reports whether the endpoints use TLS; Validate makes them all agree.
func (e Etcd) HTTPS() bool {
	return len(e.Endpoints) > 0 && strings.HasPrefix(strings.ToLower(e.Endpoints[0]), "https://")
}

// Password returns the content of PasswordFile (readable by its owner only), its trailing
// line break removed; empty when no file is set.
func (e Etcd) Password() (string, error) {
	if e.PasswordFile == "" {
		return "", nil
	}
	data, err := keys.ReadPrivate(e.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("ledger.etcd.password_file: %w", err)
	}
	// Only the line break an editor adds: spaces may belong to the password.
	password := strings.TrimRight(string(data), "\r\n")
	if password == "" {
		return "", fmt.Errorf("ledger.etcd.password_file: %s is empty", e.PasswordFile)
	}
	return password, nil
}

// Receiver names the receiver's key: the account channels pay.
type Receiver struct {
	KeyFile      string `mapstructure:"key_file"`
	PasswordFile string `mapstructure:"password_file"`
}

// Log configures structured logging.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Chain names the Ethereum node and channel contract to use.
type Chain struct {
	RPCURL          string        `mapstructure:"rpc_url"`
	ChainID         uint64        `mapstructure:"chain_id"`
	ContractAddress string        `mapstructure:"contract_address"`
	StartBlock      uint64        `mapstructure:"start_block"`
	Confirmations   uint64        `mapstructure:"confirmations"`
	PollInterval    time.Duration `mapstructure:"poll_interval"`
	MaxLag          time.Duration `mapstructure:"max_lag"`
	MaxHeadAge      time.Duration `mapstructure:"max_head_age"`
	MinReceiverETH  string        `mapstructure:"min_receiver_eth"`
	MaxFeeGwei      string        `mapstructure:"max_fee_gwei"`
}

// DevChain configures the embedded development chain, used when Chain.RPCURL is empty.
type DevChain struct {
	Listen          string        `mapstructure:"listen"`
	Confirmations   uint64        `mapstructure:"confirmations"`
	BlockPeriod     time.Duration `mapstructure:"block_period"`
	Accounts        int           `mapstructure:"accounts"`
	ChallengePeriod uint32        `mapstructure:"challenge_period"`
}

// Default returns the built-in defaults, the values config.yaml documents.
func Default() Config {
	return Config{
		Log: Log{Level: "info", Format: "text"},
		Authz: Authz{Listen: "127.0.0.1:9001", GatewayPath: "/api/1", MaxRequestBytes: DefaultMaxRequestBytes,
			RetryWindow: DefaultRetryWindow},
		Admin:   Admin{Listen: "127.0.0.1:9002"},
		Pricing: Pricing{File: "prices.yaml"},
		Ledger: Ledger{Backend: BackendBadger, Dir: "data", MinFreeMB: 256, Etcd: Etcd{
			Prefix: "/uraiden/", DialTimeout: 5 * time.Second, RequestTimeout: 700 * time.Millisecond,
		}},
		Chain: Chain{Confirmations: 12, PollInterval: time.Second, MaxLag: 30 * time.Second, MaxHeadAge: 2 * time.Minute,
			MinReceiverETH: "0.01", MaxFeeGwei: "500"},
		DevChain: DevChain{Listen: "127.0.0.1:8545", Accounts: 4, ChallengePeriod: contracts.MinChallengePeriod},
		Gateway:  Gateway{Listen: GatewayAuto},
	}
}

// EnvPrefix prefixes every environment variable: chain.rpc_url is URAIDEN_CHAIN_RPC_URL.
const EnvPrefix = "URAIDEN"

// New returns a viper instance with the defaults and the environment wired in. Callers bind
// their flags to it, then call Load.
func New() *viper.Viper {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// Every key needs a default for AutomaticEnv to see its variable.
	var defaults map[string]any
	if err := mapstructure.Decode(Default(), &defaults); err != nil {
		panic(err)
	}
	setDefaults(v, "", defaults)
	return v
}

// setDefaults sets every leaf of a decoded configuration as a default, sections within
// sections (authz.tls.cert_file) included.
func setDefaults(v *viper.Viper, prefix string, values map[string]any) {
	for key, value := range values {
		if nested, ok := value.(map[string]any); ok {
			setDefaults(v, prefix+key+".", nested)
			continue
		}
		v.SetDefault(prefix+key, value)
	}
}

// Load reads the file (if path is not empty), merges environment and flags, and validates.
// A missing file is an error only when required is true.
func Load(v *viper.Viper, path string, required bool) (Config, error) {
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			if required || !errors.Is(err, os.ErrNotExist) {
				return Config{}, fmt.Errorf("config %s: %w", path, err)
			}
		}
	}
	// An inline password would be an unknown key all the same; this says where it goes.
	if v.IsSet("ledger.etcd.password") {
		return Config{}, fmt.Errorf("config %s: ledger.etcd.password: not accepted (in the file or URAIDEN_LEDGER_ETCD_PASSWORD): "+
			"write the password to a file readable by its owner only (chmod 600) and name it in ledger.etcd.password_file", path)
	}
	var c Config
	err := v.UnmarshalExact(&c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		// Lists from the environment: URAIDEN_LEDGER_ETCD_ENDPOINTS=https://a:2379,https://b:2379.
		mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks every value and returns all problems together.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if _, err := c.Log.SlogLevel(); err != nil {
		bad("log.level", "%v", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	if _, _, err := net.SplitHostPort(c.Authz.Listen); err != nil {
		bad("authz.listen", "%v", err)
	}
	if _, _, err := net.SplitHostPort(c.Authz.HTTPListen); c.Authz.HTTPListen != "" && err != nil {
		bad("authz.http_listen", "%v (or empty for none)", err)
	}
	if !strings.HasPrefix(c.Authz.GatewayPath, "/") {
		bad("authz.gateway_path", "must start with /, got %q", c.Authz.GatewayPath)
	}
	if n := c.Authz.MaxRequestBytes; n < MinMaxRequestBytes || n > MaxMaxRequestBytes {
		bad("authz.max_request_bytes", "must be between %d (Envoy's default header limit is 60 KiB) and %d, got %d", MinMaxRequestBytes, MaxMaxRequestBytes, n)
	}
	if err := c.Authz.TLS.Files().Validate(); err != nil {
		bad("authz.tls", "%v", err)
	}
	if w := c.Authz.RetryWindow; w < 0 || w > MaxRetryWindow {
		bad("authz.retry_window", "must be between 0 (no retries served) and %s, got %s", MaxRetryWindow, w)
	}
	c.validateAdmin(bad)
	if c.Pricing.File == "" {
		bad("pricing.file", "required")
	}
	c.validateLedger(bad)
	if _, err := c.Chain.MinReceiverWei(); err != nil {
		bad("chain.min_receiver_eth", "%v", err)
	}
	if fee, err := c.Chain.MaxFeeWei(); err != nil || fee.Sign() == 0 {
		bad("chain.max_fee_gwei", "not a positive decimal number of gwei: %q", c.Chain.MaxFeeGwei)
	}
	if c.Chain.PollInterval <= 0 {
		bad("chain.poll_interval", "must be positive")
	}
	if c.Chain.MaxLag < c.Chain.PollInterval {
		bad("chain.max_lag", "must be at least chain.poll_interval")
	}
	if c.Chain.RPCURL != "" {
		if c.Receiver.KeyFile == "" {
			bad("receiver.key_file", "required with chain.rpc_url")
		}
		if c.Chain.ChainID == 0 {
			bad("chain.chain_id", "required with chain.rpc_url")
		}
		if c.Chain.ContractAddress == "" {
			bad("chain.contract_address", "required with chain.rpc_url")
		}
	}
	if a := c.Chain.ContractAddress; a != "" && !common.IsHexAddress(a) {
		bad("chain.contract_address", "not a hex address: %q", a)
	}
	if _, _, err := net.SplitHostPort(c.DevChain.Listen); c.DevChain.Listen != "" && err != nil {
		bad("devchain.listen", "%v", err)
	}
	if c.DevChain.BlockPeriod < 0 {
		bad("devchain.block_period", "must not be negative")
	}
	if c.DevChain.Accounts < 1 || c.DevChain.Accounts > 100 {
		bad("devchain.accounts", "must be between 1 and 100, got %d", c.DevChain.Accounts)
	}
	if c.DevChain.ChallengePeriod < contracts.MinChallengePeriod {
		bad("devchain.challenge_period", "must be at least %d blocks, got %d", contracts.MinChallengePeriod, c.DevChain.ChallengePeriod)
	}
	c.validateGateway(bad)
	return errors.Join(errs...)
}

func (c Config) validateLedger(bad func(key, format string, args ...any)) {
	l := c.Ledger
	switch l.Backend {
	case BackendBadger:
		if l.Dir == "" {
			bad("ledger.dir", "required with ledger.backend badger")
		}
		// Endpoints without the backend are an operator who believes the ledger replicated
		// while it sits on one disk.
		if len(l.Etcd.Endpoints) > 0 {
			bad("ledger.etcd.endpoints", "set, but ledger.backend is badger: set ledger.backend to etcd, or remove them")
		}
	case BackendEtcd:
		validateEtcd(l.Etcd, bad)
	default:
		bad("ledger.backend", "must be badger or etcd, got %q", l.Backend)
	}
	if l.MinFreeMB > math.MaxUint64>>20 {
		bad("ledger.min_free_mb", "%d MiB is more bytes than 64 bits hold", l.MinFreeMB)
	}
}

func validateEtcd(e Etcd, bad func(key, format string, args ...any)) {
	if len(e.Endpoints) == 0 {
		bad("ledger.etcd.endpoints", "required with ledger.backend etcd")
	}
	schemes, seen := map[string]bool{}, map[string]bool{}
	for i, ep := range e.Endpoints {
		u, err := url.Parse(ep)
		if err != nil {
			// url.Parse's error quotes the text, which may hold a password.
			bad("ledger.etcd.endpoints", "entry %d is not an http(s) URL", i+1)
			continue
		}
		// A password in a URL must not reach the logs through this error.
		shown := u.Redacted()
		switch {
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("ledger.etcd.endpoints", "not an http(s) URL: %q", shown)
			continue
		case u.Port() == "":
			bad("ledger.etcd.endpoints", "%q has no port (etcd's client port is 2379)", shown)
		case u.User != nil:
			bad("ledger.etcd.endpoints", "%q carries user information: use ledger.etcd.username and password_file", shown)
		case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
			bad("ledger.etcd.endpoints", "%q has a path, query or fragment: an endpoint is scheme://host:port", shown)
		}
		if seen[u.Host] {
			bad("ledger.etcd.endpoints", "%s is listed twice", u.Host)
		}
		seen[u.Host], schemes[u.Scheme] = true, true
	}
	// The client dials every endpoint with the first one's scheme.
	if len(schemes) > 1 {
		bad("ledger.etcd.endpoints", "mix http:// and https://: all must use the same scheme")
	}
	if !strings.HasPrefix(e.Prefix, "/") || !strings.HasSuffix(e.Prefix, "/") {
		bad("ledger.etcd.prefix", "must start and end with /, got %q", e.Prefix)
	}
	if e.DialTimeout <= 0 {
		bad("ledger.etcd.dial_timeout", "must be positive, got %s", e.DialTimeout)
	}
	if e.RequestTimeout <= 0 {
		bad("ledger.etcd.request_timeout", "must be positive, got %s", e.RequestTimeout)
	}
	if e.Username != "" && e.PasswordFile == "" {
		bad("ledger.etcd.password_file", "required with ledger.etcd.username")
	}
	if e.PasswordFile != "" && e.Username == "" {
		bad("ledger.etcd.username", "required with ledger.etcd.password_file")
	}
	if err := e.TLS.Files().Validate(); err != nil {
		bad("ledger.etcd.tls", "%v", err)
	}
	if schemes["http"] && !schemes["https"] && e.TLS.Files().Enabled() {
		bad("ledger.etcd.tls", "set, but the endpoints are http://: use https:// endpoints, or remove the TLS settings")
	}
}

func (c Config) validateGateway(bad func(key, format string, args ...any)) {
	g := c.Gateway
	if _, _, err := net.SplitHostPort(g.Listen); g.Listen != "" && g.Listen != GatewayAuto && err != nil {
		bad("gateway.listen", "%v (or auto, or empty for none)", err)
	}
	if g.Upstream != "" {
		if u, err := url.Parse(g.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("gateway.upstream", "not an http(s) URL: %q", g.Upstream)
		}
	}
}

func (c Config) validateAdmin(bad func(key, format string, args ...any)) {
	a := c.Admin
	if _, _, err := net.SplitHostPort(a.Listen); a.Listen != "" && err != nil {
		bad("admin.listen", "%v", err)
	}
	if a.PathPrefix != "" {
		if err := admin.CheckPrefix(a.PathPrefix); err != nil {
			bad("admin.path_prefix", "%v", err)
		}
	} else if err := admin.CheckPrefix(c.Authz.GatewayPath); err != nil && strings.HasPrefix(c.Authz.GatewayPath, "/") {
		bad("authz.gateway_path", "mounts the admin API (admin.path_prefix is empty): %v", err)
	}
	if a.Token != "" && a.TokenFile != "" {
		bad("admin.token", "set admin.token or admin.token_file, not both")
	}
	if a.Token != "" && len(a.Token) < MinTokenLength {
		bad("admin.token", "must be at least %d characters", MinTokenLength)
	}
	if err := a.TLS.Files().Validate(); err != nil {
		bad("admin.tls", "%v", err)
	}
}

// CheckFiles reads what the configuration names besides the price table, as serve would
// at start, and returns every problem together: the receiver's key and password files, the
// admin token file and etcd's password file (each readable by its owner only), and the TLS
// certificates and keys, etcd's client ones included. Validate checks values only; this
// touches the disk.
func (c Config) CheckFiles() error {
	var errs []error
	for _, f := range []struct{ key, path string }{
		{"receiver.key_file", c.Receiver.KeyFile}, {"receiver.password_file", c.Receiver.PasswordFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := keys.ReadPrivate(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		}
	}
	if _, err := c.Admin.OperatorToken(); err != nil {
		errs = append(errs, err)
	}
	for _, t := range []struct {
		key   string
		files TLS
	}{{"authz.tls", c.Authz.TLS}, {"admin.tls", c.Admin.TLS}} {
		if _, err := tlsconf.Server(t.files.Files(), nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.key, err))
		}
	}
	if e := c.Ledger.Etcd; c.Ledger.Backend == BackendEtcd {
		if _, err := e.Password(); err != nil {
			errs = append(errs, err)
		}
		if e.HTTPS() {
			if _, err := tlsconf.Client(e.TLS.Files()); err != nil {
				errs = append(errs, fmt.Errorf("ledger.etcd.tls: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// MinReceiverWei parses MinReceiverETH (a decimal number of ETH) into wei.
func (c Chain) MinReceiverWei() (*big.Int, error) { return decimalUnits(c.MinReceiverETH, 1e18) }

// MaxFeeWei parses MaxFeeGwei (a decimal number of gwei) into wei per gas.
func (c Chain) MaxFeeWei() (*big.Int, error) { return decimalUnits(c.MaxFeeGwei, 1e9) }

func decimalUnits(text string, unit int64) (*big.Int, error) {
	f, ok := new(big.Float).SetPrec(256).SetString(text)
	if !ok || f.Sign() < 0 {
		return nil, fmt.Errorf("not a non-negative decimal number: %q", text)
	}
	v, _ := f.Mul(f, new(big.Float).SetInt64(unit)).Int(nil)
	return v, nil
}

// Contract returns the configured channel contract address.
func (c Chain) Contract() common.Address { return common.HexToAddress(c.ContractAddress) }

// SlogLevel parses the log level.
func (l Log) SlogLevel() (slog.Level, error) {
	var level slog.Level
	err := level.UnmarshalText([]byte(l.Level))
	return level, err
}

// Logger builds the process logger.
func (l Log) Logger() *slog.Logger {
	level, _ := l.SlogLevel()
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
