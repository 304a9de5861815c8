package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/uraiden/uraiden/internal/testkit/tlstest"
	"github.com/uraiden/uraiden/keys"
)

func TestAdminValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no admin server", func(c *Config) { c.Admin.Listen = "" }, ""},
		{"bad listen", func(c *Config) { c.Admin.Listen = "9002" }, "admin.listen"},
		{"short token", func(c *Config) { c.Admin.Token = "short" }, "admin.token: must be at least 16"},
		{"token and file", func(c *Config) { c.Admin.Token, c.Admin.TokenFile = strings.Repeat("t", 16), "f" }, "not both"},
		{"bad prefix", func(c *Config) { c.Admin.PathPrefix = "api" }, "admin.path_prefix"},
		{"prefix on a probe", func(c *Config) { c.Admin.PathPrefix = "/metrics" }, "collides"},
		{"gateway path mounting the API", func(c *Config) { c.Authz.GatewayPath = "/healthz" }, "authz.gateway_path"},
	} {
		cfg := Default()
		c.edit(&cfg)
		err := cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestOperatorTokenSources(t *testing.T) {
	t.Setenv("URAIDEN_ADMIN_TOKEN", "from-the-environment-0123")
	cfg, err := Load(New(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if token, err := cfg.Admin.OperatorToken(); err != nil || token != "from-the-environment-0123" {
		t.Errorf("token from the environment: %q %v", token, err)
	}
	if cfg.APIPrefix() != "/api/1" {
		t.Errorf("API prefix %q, want the gateway path", cfg.APIPrefix())
	}

	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-a-file-0123456789\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := Admin{TokenFile: file}
	if _, err := a.OperatorToken(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a token file others can read: %v", err)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	if token, err := a.OperatorToken(); err != nil || token != "from-a-file-0123456789" {
		t.Errorf("token from a file: %q %v", token, err)
	}
	if err := os.WriteFile(file, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.OperatorToken(); err == nil {
		t.Error("a short token from a file was accepted")
	}
}

func TestTLSAndSizeValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // "" for valid
	}{
		{"TLS on both", func(c *Config) {
			c.Authz.TLS, c.Admin.TLS = TLS{CertFile: "c", KeyFile: "k"}, TLS{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}
		}, ""},
		{"cert without key", func(c *Config) { c.Authz.TLS.CertFile = "c" }, "authz.tls: cert_file needs key_file"},
		{"key without cert", func(c *Config) { c.Admin.TLS.KeyFile = "k" }, "admin.tls: key_file needs cert_file"},
		{"client CA without TLS", func(c *Config) { c.Admin.TLS.ClientCAFile = "ca" }, "admin.tls: client_ca_file needs cert_file"},
		{"requests below Envoy's headers", func(c *Config) { c.Authz.MaxRequestBytes = 60 << 10 }, "authz.max_request_bytes"},
		{"huge requests", func(c *Config) { c.Authz.MaxRequestBytes = 1 << 30 }, "authz.max_request_bytes"},
		{"no retries served", func(c *Config) { c.Authz.RetryWindow = 0 }, ""},
		{"the longest retry window", func(c *Config) { c.Authz.RetryWindow = MaxRetryWindow }, ""},
		{"a negative retry window", func(c *Config) { c.Authz.RetryWindow = -time.Second }, "authz.retry_window"},
		{"a retry window over the bound", func(c *Config) { c.Authz.RetryWindow = MaxRetryWindow + time.Second }, "authz.retry_window"},
	} {
		cfg := Default()
		c.edit(&cfg)
		err := cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// The TLS keys nest a level deeper than the others; the file and the environment reach
// them all the same.
func TestTLSKeysFromFileAndEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "authz:\n  max_request_bytes: 131072\n  tls:\n    cert_file: /a.crt\n    key_file: /a.key\nadmin:\n  tls:\n    cert_file: /b.crt\n    key_file: /b.key\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("URAIDEN_ADMIN_TLS_CLIENT_CA_FILE", "/ca.crt")
	t.Setenv("URAIDEN_AUTHZ_RETRY_WINDOW", "45s")
	cfg, err := Load(New(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	want := Authz{Listen: "127.0.0.1:9001", GatewayPath: "/api/1", MaxRequestBytes: 128 << 10, RetryWindow: 45 * time.Second,
		TLS: TLS{CertFile: "/a.crt", KeyFile: "/a.key"}}
	if cfg.Authz != want || cfg.Admin.TLS != (TLS{CertFile: "/b.crt", KeyFile: "/b.key", ClientCAFile: "/ca.crt"}) {
		t.Errorf("authz %+v, admin.tls %+v", cfg.Authz, cfg.Admin.TLS)
	}
	if err := os.WriteFile(path, []byte("authz:\n  tls:\n    cert: /a.crt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(New(), path, true); err == nil || !strings.Contains(err.Error(), "cert") {
		t.Errorf("a misspelt TLS key: %v", err)
	}
}

// CheckFiles reads what serve would read and reports every problem, each under its key:
// secrets others can read, TLS files missing or not matching.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	cert, key := ca.Server("server").Write(t, dir, "server")
	caFile := ca.WriteCA(t, dir, "ca")
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("secret-content-0123456789"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := Default()
	good.Receiver.KeyFile, good.Receiver.PasswordFile = write("key", 0o600), write("password", 0o400)
	good.Admin.TokenFile = write("token", 0o600)
	good.Authz.TLS = TLS{CertFile: cert, KeyFile: key}
	good.Admin.TLS = TLS{CertFile: cert, KeyFile: key, ClientCAFile: caFile}
	if err := good.CheckFiles(); err != nil {
		t.Fatalf("good files: %v", err)
	}
	bad := good
	bad.Receiver.KeyFile, bad.Receiver.PasswordFile = write("open-key", 0o644), write("open-password", 0o604)
	bad.Admin.TokenFile = write("open-token", 0o640)
	bad.Authz.TLS.CertFile = filepath.Join(dir, "missing.crt")
	bad.Admin.TLS.KeyFile = write("open-tls-key", 0o644)
	err := bad.CheckFiles()
	if !errors.Is(err, keys.ErrPermissions) {
		t.Errorf("not ErrPermissions: %v", err)
	}
	for _, want := range []string{"receiver.key_file: ", "receiver.password_file: ", "admin.token_file: ", "authz.tls: ", "admin.tls: key_file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckFiles does not report %q: %v", want, err)
		}
	}
}

// admin.legacy_close is valid, off by default, and warned about when on.
func TestLegacyCloseWarns(t *testing.T) {
	c := Default()
	if c.Admin.LegacyClose || len(c.Warnings()) != 0 {
		t.Fatalf("default: legacy_close %v, warnings %v", c.Admin.LegacyClose, c.Warnings())
	}
	c.Admin.LegacyClose = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "admin.legacy_close") {
		t.Errorf("warnings %v", w)
	}
}

// etcdConfig is a valid configuration of the etcd backend, for tests to break one rule at a
// time.
func etcdConfig() Config {
	c := Default()
	c.Ledger.Backend = BackendEtcd
	c.Ledger.Etcd.Endpoints = []string{"http://127.0.0.1:2379", "http://127.0.0.1:22379"}
	return c
}

func TestLedgerValidation(t *testing.T) {
	https := func(c *Config) {
		c.Ledger.Etcd.Endpoints = []string{"https://etcd-0.example:2379", "https://10.0.0.2:2379"}
	}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // "" for valid
	}{
		{"badger, the default", func(c *Config) { *c = Default() }, ""},
		{"badger without a directory", func(c *Config) { *c = Default(); c.Ledger.Dir = "" }, "ledger.dir: required with ledger.backend badger"},
		{"badger with etcd endpoints", func(c *Config) { c.Ledger.Backend = BackendBadger }, "ledger.etcd.endpoints: set, but ledger.backend is badger"},
		{"unknown backend", func(c *Config) { c.Ledger.Backend = "bolt" }, `ledger.backend: must be badger or etcd, got "bolt"`},
		{"empty backend", func(c *Config) { c.Ledger.Backend = "" }, "ledger.backend"},
		{"etcd", func(*Config) {}, ""},
		{"etcd without a directory", func(c *Config) { c.Ledger.Dir = "" }, ""},
		{"etcd with min_free_mb", func(c *Config) { c.Ledger.MinFreeMB = 1024 }, ""},
		{"etcd over https", https, ""},
		{"https with a CA, mTLS and a server name", func(c *Config) {
			https(c)
			c.Ledger.Etcd.TLS = EtcdTLS{CAFile: "ca.crt", CertFile: "c.crt", KeyFile: "c.key", ServerName: "etcd"}
		}, ""},
		{"https with the system roots and a password", func(c *Config) {
			https(c)
			c.Ledger.Etcd.Username, c.Ledger.Etcd.PasswordFile = "uraiden", "etcd.password"
		}, ""},
		{"one endpoint", func(c *Config) { c.Ledger.Etcd.Endpoints = []string{"http://localhost:2379"} }, ""},
		{"no endpoints", func(c *Config) { c.Ledger.Etcd.Endpoints = nil }, "ledger.etcd.endpoints: required with ledger.backend etcd"},
		{"a bare host:port", func(c *Config) { c.Ledger.Etcd.Endpoints = []string{"127.0.0.1:2379"} }, "ledger.etcd.endpoints: entry 1 is not an http(s) URL"},
		{"not a URL", func(c *Config) { c.Ledger.Etcd.Endpoints = []string{"http://a:2379", "http://root:pw%zz@etcd:2379"} }, "ledger.etcd.endpoints: entry 2 is not an http(s) URL"},
		{"a unix socket", func(c *Config) { c.Ledger.Etcd.Endpoints = []string{"unix:///run/etcd.sock"} }, "ledger.etcd.endpoints: not an http(s) URL"},
		{"no port", func(c *Config) { c.Ledger.Etcd.Endpoints = []string{"http://etcd"} }, "ledger.etcd.endpoints: \"http://etcd\" has no port"},
		{"a path", func(c *Config) { c.Ledger.Etcd.Endpoints = []string{"http://etcd:2379/v3"} }, "ledger.etcd.endpoints: \"http://etcd:2379/v3\" has a path"},
		{"user information", func(c *Config) { c.Ledger.Etcd.Endpoints = []string{"http://root:hunter2@etcd:2379"} }, "ledger.etcd.endpoints: \"http://root:xxxxx@etcd:2379\" carries user information"},
		{"twice the same member", func(c *Config) { c.Ledger.Etcd.Endpoints = []string{"http://etcd:2379", "http://etcd:2379/"} }, "ledger.etcd.endpoints: etcd:2379 is listed twice"},
		{"mixed schemes", func(c *Config) { c.Ledger.Etcd.Endpoints = []string{"http://a:2379", "https://b:2379"} }, "ledger.etcd.endpoints: mix http:// and https://"},
		{"prefix without a leading /", func(c *Config) { c.Ledger.Etcd.Prefix = "uraiden/" }, `ledger.etcd.prefix: must start and end with /, got "uraiden/"`},
		{"prefix without a trailing /", func(c *Config) { c.Ledger.Etcd.Prefix = "/uraiden" }, "ledger.etcd.prefix"},
		{"empty prefix", func(c *Config) { c.Ledger.Etcd.Prefix = "" }, "ledger.etcd.prefix"},
		{"root prefix", func(c *Config) { c.Ledger.Etcd.Prefix = "/" }, ""},
		{"no dial timeout", func(c *Config) { c.Ledger.Etcd.DialTimeout = 0 }, "ledger.etcd.dial_timeout: must be positive"},
		{"negative request timeout", func(c *Config) { c.Ledger.Etcd.RequestTimeout = -time.Second }, "ledger.etcd.request_timeout: must be positive"},
		{"username without password", func(c *Config) { c.Ledger.Etcd.Username = "uraiden" }, "ledger.etcd.password_file: required with ledger.etcd.username"},
		{"password without username", func(c *Config) { c.Ledger.Etcd.PasswordFile = "p" }, "ledger.etcd.username: required with ledger.etcd.password_file"},
		{"TLS over http", func(c *Config) { c.Ledger.Etcd.TLS.CAFile = "ca.crt" }, "ledger.etcd.tls: set, but the endpoints are http://"},
		{"server name over http", func(c *Config) { c.Ledger.Etcd.TLS.ServerName = "etcd" }, "ledger.etcd.tls: set, but the endpoints are http://"},
		{"client cert without key", func(c *Config) { https(c); c.Ledger.Etcd.TLS.CertFile = "c.crt" }, "ledger.etcd.tls: cert_file needs key_file"},
		{"client key without cert", func(c *Config) { https(c); c.Ledger.Etcd.TLS.KeyFile = "c.key" }, "ledger.etcd.tls: key_file needs cert_file"},
	} {
		cfg := etcdConfig()
		c.edit(&cfg)
		err := cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// The etcd section reads from the file and the environment; the endpoints come as a YAML
// list or a comma-separated variable; a password is accepted only from a file.
func TestEtcdKeysFromFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	yaml := "ledger:\n  backend: etcd\n  etcd:\n    endpoints:\n      - https://a.example:2379\n      - https://b.example:2379\n" +
		"    prefix: /pay/\n    request_timeout: 500ms\n    username: uraiden\n    password_file: /run/etcd.password\n" +
		"    tls:\n      ca_file: /ca.crt\n      server_name: etcd\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(New(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	want := Etcd{
		Endpoints: []string{"https://a.example:2379", "https://b.example:2379"}, Prefix: "/pay/",
		DialTimeout: 5 * time.Second, RequestTimeout: 500 * time.Millisecond,
		Username: "uraiden", PasswordFile: "/run/etcd.password", TLS: EtcdTLS{CAFile: "/ca.crt", ServerName: "etcd"},
	}
	if cfg.Ledger.Backend != BackendEtcd || !reflect.DeepEqual(cfg.Ledger.Etcd, want) {
		t.Errorf("from the file: %s %+v", cfg.Ledger.Backend, cfg.Ledger.Etcd)
	}

	t.Setenv("URAIDEN_LEDGER_BACKEND", "etcd")
	t.Setenv("URAIDEN_LEDGER_ETCD_ENDPOINTS", "http://127.0.0.1:2379,http://127.0.0.1:22379")
	t.Setenv("URAIDEN_LEDGER_ETCD_DIAL_TIMEOUT", "1s")
	cfg, err = Load(New(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Ledger.Etcd
	if !reflect.DeepEqual(e.Endpoints, []string{"http://127.0.0.1:2379", "http://127.0.0.1:22379"}) ||
		e.DialTimeout != time.Second || e.RequestTimeout != 700*time.Millisecond || e.Prefix != "/uraiden/" {
		t.Errorf("from the environment: %+v", e)
	}

	if err := os.WriteFile(path, []byte("ledger:\n  backend: etcd\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n    password: hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(New(), path, true); err == nil || !strings.Contains(err.Error(), "ledger.etcd.password: not accepted") ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("an inline password in the file: %v", err)
	}
	t.Setenv("URAIDEN_LEDGER_ETCD_PASSWORD", "hunter2")
	if _, err := Load(New(), "", false); err == nil || !strings.Contains(err.Error(), "ledger.etcd.password_file") ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a password in the environment: %v", err)
	}
}

// The password file is read as the other secrets are: owner-only, its trailing line break
// (and only that) removed.
func TestEtcdPassword(t *testing.T) {
	file := filepath.Join(t.TempDir(), "etcd.password")
	e := Etcd{Username: "uraiden", PasswordFile: file}
	for _, c := range []struct {
		content string
		mode    os.FileMode
		want    string
		err     string
	}{
		{"s3cret\n", 0o600, "s3cret", ""},
		{" s3cret \r\n", 0o400, " s3cret ", ""},
		{"s3cret", 0o640, "", "readable by group or others"},
		{"\n", 0o600, "", "is empty"},
	} {
		os.Remove(file)
		if err := os.WriteFile(file, []byte(c.content), c.mode); err != nil {
			t.Fatal(err)
		}
		got, err := e.Password()
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q (mode %o): %q, %v; want %q, %q", c.content, c.mode, got, err, c.want, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), "ledger.etcd.password_file") {
			t.Errorf("the error does not name the key: %v", err)
		}
	}
	if got, err := (Etcd{}).Password(); got != "" || err != nil {
		t.Errorf("no password file: %q %v", got, err)
	}
}

// CheckFiles reads etcd's password file and TLS files when the backend is etcd.
func TestCheckFilesEtcd(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	cert, key := ca.Client("uraiden").Write(t, dir, "client")
	caFile := ca.WriteCA(t, dir, "ca")
	password := filepath.Join(dir, "password")
	tlstest.WriteFile(t, password, []byte("s3cret\n"))
	good := etcdConfig()
	good.Ledger.Etcd.Endpoints = []string{"https://127.0.0.1:2379"}
	good.Ledger.Etcd.Username, good.Ledger.Etcd.PasswordFile = "uraiden", password
	good.Ledger.Etcd.TLS = EtcdTLS{CAFile: caFile, CertFile: cert, KeyFile: key}
	if err := good.CheckFiles(); err != nil {
		t.Fatalf("good files: %v", err)
	}
	bad := good
	if err := os.Chmod(password, 0o644); err != nil {
		t.Fatal(err)
	}
	bad.Ledger.Etcd.TLS.CAFile = cert + ".missing"
	err := bad.CheckFiles()
	for _, want := range []string{"ledger.etcd.password_file: ", "ledger.etcd.tls: ca_file: "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckFiles does not report %q: %v", want, err)
		}
	}
	bad.Ledger.Etcd.TLS = EtcdTLS{CAFile: caFile, CertFile: cert, KeyFile: caFile}
	if err := bad.CheckFiles(); err == nil || !strings.Contains(err.Error(), "ledger.etcd.tls: cert_file") {
		t.Errorf("a key that is not the certificate's: %v", err)
	}
	// The badger backend reads none of it.
	bad.Ledger.Backend = BackendBadger
	if err := bad.CheckFiles(); err != nil {
		t.Errorf("badger backend: %v", err)
	}
}

// A password sent in clear to another machine is valid, and warned about.
func TestEtcdPasswordOverHTTPWarns(t *testing.T) {
	c := etcdConfig()
	c.Ledger.Etcd.Username, c.Ledger.Etcd.PasswordFile = "uraiden", "p"
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("loopback: %v", w)
	}
	c.Ledger.Etcd.Endpoints = []string{"http://localhost:2379", "http://10.0.0.2:2379"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "ledger.etcd.password_file: the password goes in clear over http:// to 10.0.0.2:2379") {
		t.Errorf("warnings %v", w)
	}
	c.Ledger.Etcd.Endpoints = []string{"https://10.0.0.2:2379"}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("https: %v", w)
	}
}
