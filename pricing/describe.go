package pricing

import (
	"math/big"
	"slices"
)

// RuleInfo describes one rule as the table's file states it, for publishing what is for
// sale (the discovery document). It holds no compiled state.
type RuleInfo struct {
	Name string
	// Methods are upper-case; empty means any method.
	Methods []string
	// Host and Path are the RE2 patterns as written, matched anchored (the whole host, the
	// whole canonical path); Host is "" when the rule matches any host.
	Host, Path string
	// Price is the static price in base units, nil when the rule computes it per request
	// (price_expr).
	Price *big.Int
}

// Computed reports whether the rule's price is computed per request by a price_expr.
func (r RuleInfo) Computed() bool { return r.Price == nil }

// Rules describes the table's rules in the order they are tried. The expressions' source is
// left out: it is the operator's business how a price is computed (it may read headers an
// upstream sets), and every quote states the price it computed.
func (t *Table) Rules() []RuleInfo {
	out := make([]RuleInfo, len(t.rules))
	for i, ru := range t.rules {
		out[i] = RuleInfo{Name: ru.name, Methods: slices.Clone(ru.methods), Host: ru.hostSrc, Path: ru.pathSrc}
		if ru.expr == nil {
			out[i].Price = new(big.Int).Set(ru.price)
		}
	}
	return out
}
