// Package tlsconf builds the server-side TLS configuration of uraiden's listeners from PEM
// files: a certificate with its private key and, optionally, the CA that client
// certificates must chain to (mTLS: a client without such a certificate is refused during
// the handshake). The certificate is re-read when its files change, so that a renewed
// certificate is served without a restart.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/uraiden/uraiden/internal/keys"
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
// The logger reports certificate reloads.
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
	r := &reloader{certFile: f.CertFile, keyFile: f.KeyFile, log: logger}
	if err := r.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}
	if f.ClientCAFile != "" {
		pool, err := clientCAs(f.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
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

// reloader serves the certificate and reloads it when its files' size or modification time
// change. Handshakes are rare (Envoy keeps its connections open), so two stats each cost
// nothing that matters.
type reloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp string // the files' sizes and modification times at the last load attempt
}

func (r *reloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if stamp, err := r.stat(); err == nil && stamp != r.stamp {
		if err := r.loadLocked(); err != nil {
			// Half-written files (the certificate renewed, not yet its key) land here: keep
			// serving the old pair; the next change is retried.
			r.log.Warn("TLS: keeping the current certificate, the changed files do not load", "cert_file", r.certFile, "err", err)
		} else {
			r.log.Info("TLS: certificate reloaded", "cert_file", r.certFile)
		}
	}
	return r.cert, nil
}

func (r *reloader) load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked()
}

// loadLocked reads the pair and records the stamp it was read at, even when it fails, so
// that a broken pair is reported once rather than at every handshake.
func (r *reloader) loadLocked() error {
	stamp, err := r.stat()
	if err != nil {
		return err
	}
	r.stamp = stamp
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return fmt.Errorf("cert_file: %w", err)
	}
	keyPEM, err := keys.ReadPrivate(r.keyFile)
	if err != nil {
		return fmt.Errorf("key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's errors name what is wrong, never the key's bytes.
		return fmt.Errorf("cert_file %s and key_file %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert = &cert
	return nil
}

func (r *reloader) stat() (string, error) {
	var stamp string
	for _, p := range []string{r.certFile, r.keyFile} {
		info, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("TLS file: %w", err)
		}
		stamp += fmt.Sprintf("%d:%d;", info.Size(), info.ModTime().UnixNano())
	}
	return stamp, nil
}
