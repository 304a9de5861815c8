package keys

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ReadSecret reads a secret other than a key (a token, a password) from a file that group
// and others cannot read, without surrounding whitespace.
func ReadSecret(path string) (string, error) {
	data, err := ReadPrivate(path)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}

// Redacted is what a Secret shows instead of its value.
const Redacted = "[redacted]"

// Secret holds a value that must never be printed, such as the receiver's private key: fmt
// (every verb, %#v included), log/slog, encoding/json and encoding/text show Redacted. The
// value sits behind a pointer so that a Secret inside another value shows, at worst, as an
// address: fmt neither calls the methods of unexported fields nor follows nested pointers.
type Secret[T any] struct{ box *T }

// NewSecret wraps v.
func NewSecret[T any](v T) Secret[T] { return Secret[T]{box: &v} }

// Reveal returns the value (the zero value for a zero Secret).
func (s Secret[T]) Reveal() T {
	if s.box == nil {
		var zero T
		return zero
	}
	return *s.box
}

// Format implements fmt.Formatter for every verb.
func (Secret[T]) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// String implements fmt.Stringer for callers outside fmt.
func (Secret[T]) String() string { return Redacted }

// LogValue implements slog.LogValuer.
func (Secret[T]) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText implements encoding.TextMarshaler.
func (Secret[T]) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalJSON implements json.Marshaler.
func (Secret[T]) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }
