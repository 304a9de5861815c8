package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
