package tlsconf

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uraiden/uraiden/internal/testkit/tlstest"
	"github.com/uraiden/uraiden/keys"
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
	if err != nil || cfg.ClientAuth == tls.NoClientCert || cfg.VerifyConnection == nil {
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
	addr := serveTLS(t, Files{CertFile: cert, KeyFile: key})
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
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

// Client certificates are checked against the client CA file as it is now: after a rotation
// to a new CA the old CA's clients are refused, also when they resume a session, and the
// new CA's are taken, without a restart. A certificate the CA issued for servers is no
// client certificate.
func TestClientCARotation(t *testing.T) {
	dir := t.TempDir()
	oldCA, newCA := tlstest.NewCA(t, "old"), tlstest.NewCA(t, "new")
	cert, key := oldCA.Server("server").Write(t, dir, "server")
	caFile := oldCA.WriteCA(t, dir, "clients")
	addr := serveTLS(t, Files{CertFile: cert, KeyFile: key, ClientCAFile: caFile})
	// A session cache per client: a cached session stands for the certificate it was made with.
	sessions := map[*tlstest.Pair]tls.ClientSessionCache{}
	resumed := false
	accepted := func(client *tlstest.Pair) error {
		t.Helper()
		if sessions[client] == nil {
			sessions[client] = tls.NewLRUClientSessionCache(8)
		}
		c := &tls.Config{RootCAs: oldCA.Pool(), ServerName: "localhost", ClientSessionCache: sessions[client]}
		if client != nil {
			c.Certificates = []tls.Certificate{client.TLS(t)}
		}
		conn, err := tls.Dial("tcp", addr, c)
		if err != nil {
			return err
		}
		defer conn.Close()
		buf := make([]byte, 2)
		_, err = io.ReadFull(conn, buf)
		resumed = conn.ConnectionState().DidResume
		return err
	}
	oldClient, newClient, serverCert := oldCA.Client("old-client"), newCA.Client("new-client"), oldCA.Server("not-a-client")
	for range 2 {
		if err := accepted(&oldClient); err != nil {
			t.Fatalf("the old CA's client before the rotation: %v", err)
		}
	}
	if !resumed {
		t.Fatal("setup: the second connection did not resume the session")
	}
	for name, client := range map[string]*tlstest.Pair{"no certificate": nil, "the new CA's client": &newClient, "a server certificate": &serverCert} {
		if err := accepted(client); err == nil {
			t.Errorf("before the rotation, %s was accepted", name)
		}
	}

	// Both CA files padded to one size (PEM ignores what follows a block), for the copy below.
	size := max(len(oldCA.PEM), len(newCA.PEM))
	padded := func(pem []byte) []byte { return append(slices.Clip(pem), bytes.Repeat([]byte("\n"), size-len(pem))...) }
	tlstest.WriteFile(t, caFile, padded(newCA.PEM))
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(caFile, later, later); err != nil {
		t.Fatal(err)
	}
	if err := accepted(&oldClient); err == nil {
		t.Error("after the rotation, the old CA's client (resuming its session) was accepted")
	}
	if err := accepted(&newClient); err != nil {
		t.Errorf("after the rotation, the new CA's client: %v", err)
	}

	// Back to the old CA, by a copy of the same size that keeps the file's time.
	tlstest.WriteFile(t, caFile, padded(oldCA.PEM))
	if err := os.Chtimes(caFile, later, later); err != nil {
		t.Fatal(err)
	}
	if err := accepted(&newClient); err == nil {
		t.Error("after a copy of the old CA that kept size and time, the new CA's client was accepted")
	}

	tlstest.WriteFile(t, caFile, []byte("not PEM"))
	if err := accepted(&oldClient); err != nil {
		t.Errorf("after a broken CA file, the last good CAs should stay: %v", err)
	}
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	if err := accepted(&oldClient); err != nil {
		t.Errorf("with the CA file gone, the last good CAs should stay: %v", err)
	}
}

// serveTLS serves the files' configuration on a loopback port until the test ends and
// returns its address. Each connection that completes the handshake is answered "ok": a
// client learns of a refusal of its certificate when it reads.
func serveTLS(t *testing.T, f Files) string {
	t.Helper()
	cfg, err := Server(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return l.Addr().String()
}
