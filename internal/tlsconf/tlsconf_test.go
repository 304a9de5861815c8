package tlsconf

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uraiden/uraiden/internal/keys"
	"github.com/uraiden/uraiden/internal/tlsconf/tlstest"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		files Files
		want  string // "" for valid
	}{
		{Files{}, ""},
		{Files{CertFile: "c", KeyFile: "k"}, ""},
		{Files{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}, ""},
		{Files{CertFile: "c"}, "cert_file needs key_file"},
		{Files{KeyFile: "k"}, "key_file needs cert_file"},
		{Files{ClientCAFile: "ca"}, "client_ca_file needs cert_file"},
	} {
		err := c.files.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.files, err, c.want)
		}
	}
}

// Files that cannot serve are errors at load, each naming its key; a key file others can
// read is refused like the receiver's key.
func TestServerRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	cert, key := ca.Server("server").Write(t, dir, "server")
	_, otherKey := ca.Server("other").Write(t, dir, "other")
	caFile := ca.WriteCA(t, dir, "ca")
	openKey := filepath.Join(dir, "open.key")
	data, _ := os.ReadFile(key)
	if err := os.WriteFile(openKey, data, 0o644); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	tlstest.WriteFile(t, notPEM, []byte("hello"))

	if cfg, err := Server(Files{}, nil); cfg != nil || err != nil {
		t.Errorf("no files: %v, %v", cfg, err)
	}
	cfg, err := Server(Files{CertFile: cert, KeyFile: key, ClientCAFile: caFile}, nil)
	if err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Fatalf("good files: %v", err)
	}
	for _, c := range []struct {
		name  string
		files Files
		want  string
	}{
		{"missing cert", Files{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: key}, "no such file"},
		{"missing key", Files{CertFile: cert, KeyFile: filepath.Join(dir, "nope.key")}, "no such file"},
		{"readable key", Files{CertFile: cert, KeyFile: openKey}, "chmod 600"},
		{"mismatched pair", Files{CertFile: cert, KeyFile: otherKey}, "does not match"},
		{"cert not PEM", Files{CertFile: notPEM, KeyFile: key}, "cert_file"},
		{"missing client CA", Files{CertFile: cert, KeyFile: key, ClientCAFile: filepath.Join(dir, "nope.crt")}, "client_ca_file"},
		{"client CA not PEM", Files{CertFile: cert, KeyFile: key, ClientCAFile: notPEM}, "no PEM certificate"},
		{"half set", Files{CertFile: cert}, "needs key_file"},
	} {
		if _, err := Server(c.files, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := Server(Files{CertFile: cert, KeyFile: openKey}, nil); !errors.Is(err, keys.ErrPermissions) {
		t.Errorf("readable key: %v is not ErrPermissions", err)
	}
}

// A renewed certificate is served from the next handshake on, without a restart; files
// that do not load leave the last good certificate in service.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	first, second := ca.Server("first"), ca.Server("second")
	cert, key := first.Write(t, dir, "server")
	cfg, err := Server(Files{CertFile: cert, KeyFile: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}
	// A new modification time at each change, whatever the clock's granularity.
	changes := 0
	touch := func(paths ...string) {
		changes++
		later := time.Now().Add(time.Duration(changes) * time.Hour)
		for _, p := range paths {
			if err := os.Chtimes(p, later, later); err != nil {
				t.Fatal(err)
			}
		}
	}
	second.Write(t, dir, "server")
	touch(cert, key)
	if got := served(); got != "second" {
		t.Errorf("after renewal served %q, want second", got)
	}
	tlstest.WriteFile(t, cert, bytes.Repeat([]byte("x"), 10))
	touch(cert)
	if got := served(); got != "second" {
		t.Errorf("after a broken renewal served %q, want the last good one", got)
	}
}
