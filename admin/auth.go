package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// access is what a request may see.
type access uint8

const (
	public access = iota
	operator
)

// authorize checks the request's operator token. It returns the access granted, or writes
// the refusal and returns ok = false: 401 without credentials, 403 with wrong ones or when
// no token is configured. A request without an Authorization header is public when
// optional is true (endpoints that show more to the operator).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, optional bool) (access, bool) {
	header := r.Header.Get("Authorization")
	if header == "" && optional {
		return public, true
	}
	if s.tokenHash == nil {
		writeError(w, http.StatusForbidden, "operator endpoints are disabled: no admin token is configured (admin.token, admin.token_file or URAIDEN_ADMIN_TOKEN)")
		return public, false
	}
	// The scheme is case-insensitive (RFC 7235).
	scheme, token, _ := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="uraiden"`)
		writeError(w, http.StatusUnauthorized, "operator token required: Authorization: Bearer <admin.token>")
		return public, false
	}
	// Hashing first makes the comparison constant-time in the token's length too.
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], s.tokenHash) != 1 {
		writeError(w, http.StatusForbidden, "wrong operator token")
		return public, false
	}
	return operator, true
}

// operatorOnly wraps a handler that needs the operator token.
func (s *Server) operatorOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authorize(w, r, false); ok {
			h(w, r)
		}
	}
}
