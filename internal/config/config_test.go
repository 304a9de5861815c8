package config

import (
	"errors"
	"os"
	"path/filepath"
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
