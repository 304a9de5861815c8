package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/uraiden/uraiden/keys"
)

// ClientFiles names the PEM files of a client's TLS: the CA the server's certificate must
// chain to (empty: the system's roots) and, for mTLS, the client's certificate and key.
// ServerName is the name the server's certificate must hold, when it is not the host the
// client dials.
type ClientFiles struct {
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
}

// Enabled reports whether any setting is given.
func (f ClientFiles) Enabled() bool {
	return f.CAFile != "" || f.CertFile != "" || f.KeyFile != "" || f.ServerName != ""
}

// Validate checks that the certificate and its key are set together, without reading them.
func (f ClientFiles) Validate() error {
	var errs []error
	if f.CertFile != "" && f.KeyFile == "" {
		errs = append(errs, errors.New("cert_file needs key_file"))
	}
	if f.KeyFile != "" && f.CertFile == "" {
		errs = append(errs, errors.New("key_file needs cert_file"))
	}
	return errors.Join(errs...)
}

// Client reads the files and returns a client's TLS configuration; with no file set it
// trusts the system's roots and presents no certificate. The key file is refused when group
// or others can read it, like a listener's.
//
// Unlike Server, the files are read once: a client's connections are few and long-lived,
// and a renewed client certificate takes effect when the process restarts.
func Client(f ClientFiles) (*tls.Config, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		data, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", f.CAFile)
		}
	}
	if f.CertFile != "" {
		certPEM, err := os.ReadFile(f.CertFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		keyPEM, err := keys.ReadPrivate(f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// crypto/tls's errors name what is wrong, never the key's bytes.
			return nil, fmt.Errorf("cert_file %s and key_file %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
