package authz

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/uraiden/uraiden/ledger"
)

// What names a request for its retries (docs/protocol.md §8): the client's Idempotency-Key,
// or else the x-request-id Envoy gives each request and keeps when it retries the Check.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	headerRequestID      = "x-request-id"
	// UpstreamRetry is set to 1 on a retry served with an earlier attempt's payment, so that
	// an upstream which acts on requests can tell a second attempt of one.
	UpstreamRetry = "x-rdn-retry"
	// maxIdempotencyKey bounds the client's key: a UUID or a hash fits many times over.
	maxIdempotencyKey = 255
)

// retryDomain separates these hashes from any other use of SHA-256 over request fields.
const retryDomain = "uraiden retry key v1"

// retryKey is the ledger's key for the request's retries: zero without either header. A
// malformed Idempotency-Key is an error (400). The key is bound to the method, host and
// path with its query, which a retry keeps and a captured proof replayed on another request
// would change; and to the header it came from, so that one header's value cannot stand
// for the other's.
func retryKey(req httpRequest) (ledger.RetryKey, error) {
	source, value := "idempotency-key", req.headers["idempotency-key"]
	if _, ok := req.headers["idempotency-key"]; ok {
		if err := checkIdempotencyKey(value); err != nil {
			return ledger.RetryKey{}, err
		}
	} else if source, value = headerRequestID, req.headers[headerRequestID]; value == "" {
		return ledger.RetryKey{}, nil
	}
	// One buffer hashed at once, on the stack for keys of common sizes: sha256.New and a Write
	// per part cost four allocations and a Sum's copy, on every paid request.
	p := req.pricing
	var buf [512]byte
	b := buf[:0]
	for _, part := range [...]string{retryDomain, p.Method, strings.ToLower(p.Host), p.Path, p.RawQuery, source, value} {
		b = binary.AppendUvarint(b, uint64(len(part)))
		b = append(b, part...)
	}
	sum := sha256.Sum256(b)
	var key ledger.RetryKey
	copy(key[:], sum[:])
	return key, nil
}

// checkIdempotencyKey accepts 1 to maxIdempotencyKey printable ASCII characters (a
// structured-field string's quotes included), without quoting a bad key back.
func checkIdempotencyKey(v string) error {
	if v == "" || len(v) > maxIdempotencyKey {
		return fmt.Errorf("%s: must be 1 to %d characters, got %d", HeaderIdempotencyKey, maxIdempotencyKey, len(v))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("%s: character %d is not printable ASCII", HeaderIdempotencyKey, i+1)
		}
	}
	return nil
}
