package authz

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/uraiden/uraiden/ledger"
)

// The retry key stays the same for what a retry keeps, and changes with everything a replay
// of the proof on another request would change.
func TestRetryKey(t *testing.T) {
	key := func(method, path string, headers map[string]string) ledger.RetryKey {
		t.Helper()
		req, err := fromCheckRequest(plainRequest(method, path, headers))
		if err != nil {
			t.Fatal(err)
		}
		k, err := retryKey(req)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	id := map[string]string{"x-request-id": "r-1"}
	base := key("GET", "/echofix/a?q=1", id)
	if base == (ledger.RetryKey{}) {
		t.Fatal("an x-request-id gives no key")
	}
	same := map[string]ledger.RetryKey{
		"the same request again":       key("GET", "/echofix/a?q=1", id),
		"the path written another way": key("GET", "/echofix/./a?q=1", id),
		"other headers":                key("GET", "/echofix/a?q=1", map[string]string{"x-request-id": "r-1", "user-agent": "retry"}),
	}
	for name, k := range same {
		if k != base {
			t.Errorf("%s: another key", name)
		}
	}
	differ := map[string]ledger.RetryKey{
		"another x-request-id":         key("GET", "/echofix/a?q=1", map[string]string{"x-request-id": "r-2"}),
		"another method":               key("HEAD", "/echofix/a?q=1", id),
		"another path":                 key("GET", "/echofix/b?q=1", id),
		"another query":                key("GET", "/echofix/a?q=2", id),
		"the id as an Idempotency-Key": key("GET", "/echofix/a?q=1", map[string]string{"idempotency-key": "r-1"}),
	}
	for name, k := range differ {
		if k == base || k == (ledger.RetryKey{}) {
			t.Errorf("%s: the same key, or none", name)
		}
	}
	idem := key("GET", "/echofix/a", map[string]string{"idempotency-key": "k", "x-request-id": "r-1"})
	if idem != key("GET", "/echofix/a", map[string]string{"idempotency-key": "k", "x-request-id": "r-2"}) {
		t.Error("the Idempotency-Key does not take precedence over x-request-id")
	}
	if k := key("GET", "/echofix/a", nil); k != (ledger.RetryKey{}) {
		t.Errorf("no header: key %x, want none", k)
	}
}

func TestIdempotencyKeyIsChecked(t *testing.T) {
	for v, ok := range map[string]bool{
		"8e0f6c6e-3b7a-4b8f-9a51-5a4f0c6b7e21": true, `"sf-string"`: true, "a b": true,
		strings.Repeat("k", maxIdempotencyKey): true, strings.Repeat("k", maxIdempotencyKey+1): false,
		"": false, "caf\u00e9": false, "a\x00b": false, "a\x7fb": false,
	} {
		if err := checkIdempotencyKey(v); (err == nil) != ok {
			t.Errorf("%q: %v, want accepted %v", v, err, ok)
		}
	}
}

// The key is the one docs/protocol.md §8 defines: the first 16 bytes of SHA-256 over the
// length-prefixed parts, computed here the long way.
func TestRetryKeyIsTheDocumentedHash(t *testing.T) {
	req, err := fromCheckRequest(plainRequest("GET", "/echofix/a?q=1", map[string]string{"x-request-id": "r-1"}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := retryKey(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	p := req.pricing
	for _, part := range []string{"uraiden retry key v1", p.Method, strings.ToLower(p.Host), p.Path, p.RawQuery, "x-request-id", "r-1"} {
		h.Write(binary.AppendUvarint(nil, uint64(len(part))))
		h.Write([]byte(part))
	}
	if want := h.Sum(nil)[:16]; !bytes.Equal(got[:], want) {
		t.Errorf("key %x, want %x", got, want)
	}
	// A route longer than the stack buffer hashes the same way.
	long := "/echofix/" + strings.Repeat("a", 600)
	if req, err = fromCheckRequest(plainRequest("GET", long, map[string]string{"x-request-id": "r-1"})); err != nil {
		t.Fatal(err)
	}
	if k, err := retryKey(req); err != nil || k == got || k == (ledger.RetryKey{}) {
		t.Errorf("long path: key %x, %v", k, err)
	}
}

// go test -run - -bench RetryKey -benchmem ./authz: computed for every paid request that has
// an x-request-id, which Envoy gives every request.
func BenchmarkRetryKey(b *testing.B) {
	req, err := fromCheckRequest(plainRequest("GET", "/echofix/a?q=1", map[string]string{"x-request-id": "7c1f9d3e-1111-4b5b-9c1e-0123456789ab"}))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := retryKey(req); err != nil {
			b.Fatal(err)
		}
	}
}
