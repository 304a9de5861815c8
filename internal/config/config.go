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
	return out
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

// Ledger configures the Badger ledger.
type Ledger struct {
	Dir string `mapstructure:"dir"`
	// MinFreeMB is the free space (MiB) the ledger's file system must keep for payments to
	// be taken; 0 turns the check off.
	MinFreeMB uint64 `mapstructure:"min_free_mb"`
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
		Ledger:  Ledger{Dir: "data", MinFreeMB: 256},
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
	var c Config
	err := v.UnmarshalExact(&c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
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
	if c.Ledger.Dir == "" {
		bad("ledger.dir", "required")
	}
	if c.Ledger.MinFreeMB > math.MaxUint64>>20 {
		bad("ledger.min_free_mb", "%d MiB is more bytes than 64 bits hold", c.Ledger.MinFreeMB)
	}
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
// at start, and returns every problem together: the receiver's key and password files and
// the admin token file (each readable by its owner only), and the TLS certificates and
// keys. Validate checks values only; this touches the disk.
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
