package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"slices"
	"strings"

	"github.com/uraiden/uraiden/rdn"
)

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody is every error's body; Balance is set on a balance conflict.
type errorBody struct {
	Error   string `json:"error"`
	Balance string `json:"balance,omitempty"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, errorBody{Error: fmt.Sprintf(format, args...)})
}

// amount is a token amount given as a JSON number or a decimal string: µRaiden's clients
// send numbers, which a JavaScript client cannot hold exactly above 2^53.
type amount struct{ *big.Int }

func (a *amount) UnmarshalJSON(data []byte) error {
	text := strings.TrimSpace(string(data))
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(data, &text); err != nil {
			return err
		}
	}
	v, err := parseAmount(text)
	if err != nil {
		return fmt.Errorf("amount %w, got %s", err, data)
	}
	a.Int = v
	return nil
}

var errAmount = errors.New("must be a non-negative integer below 2^192, in decimal")

// parseAmount reads an amount in decimal (rdn.ParseAmount), refused with errAmount.
func parseAmount(text string) (*big.Int, error) {
	v, err := rdn.ParseAmount(text)
	if err != nil {
		return nil, errAmount
	}
	return v, nil
}

// methods routes a path by method and answers 405 in JSON for the others.
func methods(handlers map[string]http.HandlerFunc) http.HandlerFunc {
	allow := strings.Join(slices.Sorted(maps.Keys(handlers)), ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		h, ok := handlers[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method %s not allowed; allowed: %s", r.Method, allow)
			return
		}
		h(w, r)
	}
}
