// Package tlsconf builds the server-side TLS configuration of uraiden's listeners from PEM
// files: a certificate with its private key and, optionally, the CA that client
// certificates must chain to (mTLS: a client without such a certificate is refused during
// the handshake). The files are re-read when they change, so that a renewed certificate or
// a rotated client CA takes effect without a restart. It also builds the client side, for
// uraiden's connections to other services (etcd): the CA to trust and a client certificate.
package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/uraiden/uraiden/keys"
)

// Files names a listener's PEM files. All empty is plain TCP.
type Files struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
}

// Enabled reports whether any file is set: the listener serves TLS (or is misconfigured).
func (f Files) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.ClientCAFile != "" }

// Validate checks that the files that go together are set together, without reading them.
func (f Files) Validate() error {
	var errs []error
	if f.CertFile != "" && f.KeyFile == "" {
		errs = append(errs, errors.New("cert_file needs key_file"))
	}
	if f.KeyFile != "" && f.CertFile == "" {
		errs = append(errs, errors.New("key_file needs cert_file"))
	}
	if f.ClientCAFile != "" && f.CertFile == "" {
		errs = append(errs, errors.New("client_ca_file needs cert_file and key_file: client certificates are asked for only over TLS"))
	}
	return errors.Join(errs...)
}

// Server reads the files and returns the listener's TLS configuration, or nil when none is
// set. The key file is refused when group or others can read it, like the receiver's key.
// The logger reports reloads.
//
// Client certificates are verified against the client CA file as it is at each handshake:
// crypto/tls would verify them against a pool fixed in the configuration, so the check is
// made here (VerifyConnection, which also runs on resumed sessions), as crypto/tls makes it
// for RequireAndVerifyClientCert; crypto/tls still checks that the client holds the
// certificate's key.
func Server(f Files, logger *slog.Logger) (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &reloader{files: f, log: logger}
	if err := r.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
	if f.ClientCAFile != "" {
		cfg.ClientAuth, cfg.VerifyConnection = tls.RequireAnyClientCert, r.verifyClient
	}
	return cfg, nil
}

func clientCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("client_ca_file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// reloader serves the certificate and the client CAs, and reloads them when their files'
// contents change (a hash of them, not their size and time, which a copy that keeps the
// time can leave as they were). Handshakes are rare (Envoy keeps its connections open), so
// reading three small files each costs nothing that matters.
type reloader struct {
	files Files
	log   *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	clientCAs *x509.CertPool // nil without mTLS
	stamp     string         // the files' fingerprint at the last load attempt
}

func (r *reloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, _ := r.current()
	return cert, nil
}

// verifyClient verifies the client's certificate chain against the current client CAs,
// for client authentication.
func (r *reloader) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: client didn't provide a certificate")
	}
	_, roots := r.current()
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("tls: client certificate: %w", err)
	}
	return nil
}

// current returns the certificate and client CAs, reloading them first if their files
// changed. Files that do not load (half-written: the certificate renewed, not yet its key)
// leave the current ones in service; the next change is retried.
func (r *reloader) current() (*tls.Certificate, *x509.CertPool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp, err := r.fingerprint()
	if err != nil {
		stamp = "unreadable: " + err.Error()
	}
	if stamp != r.stamp {
		if err == nil {
			err = r.loadLocked()
		} else {
			r.stamp = stamp // reported once
		}
		if err != nil {
			r.log.Warn("TLS: keeping the current certificate and client CAs, the changed files do not load", "cert_file", r.files.CertFile, "err", err)
		} else {
			r.log.Info("TLS: certificate and client CAs reloaded", "cert_file", r.files.CertFile)
		}
	}
	return r.cert, r.clientCAs
}

func (r *reloader) load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked()
}

// loadLocked reads the files and records their fingerprint, even when they fail,
// so that a broken file is reported once rather than at every handshake. Nothing changes
// unless every file loads.
func (r *reloader) loadLocked() error {
	stamp, err := r.fingerprint()
	if err != nil {
		return err
	}
	r.stamp = stamp
	certPEM, err := os.ReadFile(r.files.CertFile)
	if err != nil {
		return fmt.Errorf("cert_file: %w", err)
	}
	keyPEM, err := keys.ReadPrivate(r.files.KeyFile)
	if err != nil {
		return fmt.Errorf("key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's errors name what is wrong, never the key's bytes.
		return fmt.Errorf("cert_file %s and key_file %s: %w", r.files.CertFile, r.files.KeyFile, err)
	}
	var pool *x509.CertPool
	if r.files.ClientCAFile != "" {
		if pool, err = clientCAs(r.files.ClientCAFile); err != nil {
			return err
		}
	}
	r.cert, r.clientCAs = &cert, pool
	return nil
}

// fingerprint hashes the files' contents.
func (r *reloader) fingerprint() (string, error) {
	h := sha256.New()
	for _, f := range [...]struct{ name, path string }{
		{"cert_file", r.files.CertFile}, {"key_file", r.files.KeyFile}, {"client_ca_file", r.files.ClientCAFile},
	} {
		if f.path == "" {
			continue
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f.name, err)
		}
		h.Write(data)
		h.Write([]byte{0}) // a boundary, so that moving bytes between files changes the hash
	}
	return string(h.Sum(nil)), nil
}
