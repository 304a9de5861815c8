package pricing

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// Context extension keys a route can set in Envoy's ext_authz per-route configuration.
const (
	// ExtPrice is a decimal price for the route; it replaces the table.
	ExtPrice = "uraiden.price"
	// ExtRule names the table rule that prices the route, whatever the rule's match says.
	ExtRule = "uraiden.rule"
)

// MaxPrice is the largest price a table may charge: 2^192-1, the largest amount the channel
// contract's uint192 balances can hold.
var MaxPrice = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 192), big.NewInt(1))

// Request is what pricing needs to know about an HTTP request.
type Request struct {
	Method string
	// Host is the Host header or :authority as Envoy reports it, port included if sent.
	Host string
	// Path is the request path without the query string. If it still has one (Envoy's
	// CheckRequest path does), Quote cuts it at the first '?' and, when RawQuery is empty,
	// takes the rest as the query.
	Path     string
	RawQuery string
	// Headers have lower-case names, as Envoy sends them.
	Headers map[string]string
	// ContextExtensions are the route's ext_authz context_extensions; see ExtPrice, ExtRule.
	ContextExtensions map[string]string
}

// Quote is the price of one request.
type Quote struct {
	// Price is in token base units; 0 means free. It may be shared with the table and with
	// other quotes, so it must not be modified.
	Price *big.Int
	// Rule is the name of the rule that priced the request, or "" when no rule did: the
	// table's default price or the route's uraiden.price.
	Rule string
}

// Table is a validated, immutable price table. It is safe for concurrent use.
type Table struct {
	defaultPrice *big.Int
	rules        []*rule
	byName       map[string]*rule
	// token is what converted the prices written in tokens; nil when the table was read
	// without it.
	token *Token
	// tokenPrices counts the prices the file writes in tokens; unconverted those not
	// converted (Options.Unconverted), which make Quote fail.
	tokenPrices, unconverted int
}

// rule is one entry of the table, compiled.
type rule struct {
	name string
	// methods are upper-case; empty matches any method.
	methods []string
	// host is nil when the rule matches any host.
	host *regexp.Regexp
	path *regexp.Regexp
	// hostSrc and pathSrc are the patterns as written, which the compiled ones no longer
	// show (they carry the anchors), for Rules to publish.
	hostSrc, pathSrc string
	// Exactly one of price and expr is set.
	price *big.Int
	expr  *priceExpr
}

// Len returns the number of rules.
func (t *Table) Len() int { return len(t.rules) }

// DefaultPrice returns the price of requests no rule matches. It must not be modified.
func (t *Table) DefaultPrice() *big.Int { return t.defaultPrice }

// Quote prices a request: the route's uraiden.price if set, else the rule named by its
// uraiden.rule, else the first matching rule, else the default price. An error means the
// request cannot be priced (a bad override, or an expression that failed) and should be
// refused rather than let through for free.
func (t *Table) Quote(r *Request) (Quote, error) {
	if t.unconverted > 0 {
		return Quote{}, ErrUnconverted
	}
	return t.quote(r)
}

// quote is Quote on a table that may hold unconverted prices, for Warnings.
func (t *Table) quote(r *Request) (Quote, error) {
	path, rawQuery := r.Path, r.RawQuery
	if i := strings.IndexByte(path, '?'); i >= 0 {
		if rawQuery == "" {
			rawQuery = path[i+1:]
		}
		path = path[:i]
	}
	if len(r.ContextExtensions) > 0 {
		if s, ok := r.ContextExtensions[ExtPrice]; ok {
			price, err := parsePrice(s, false)
			if err != nil {
				return Quote{}, fmt.Errorf("pricing: context extension %s: %w", ExtPrice, err)
			}
			return Quote{Price: price}, nil
		}
		if name, ok := r.ContextExtensions[ExtRule]; ok {
			ru := t.byName[name]
			if ru == nil {
				return Quote{}, fmt.Errorf("pricing: context extension %s: no rule named %q", ExtRule, name)
			}
			return ru.forced(r, path, rawQuery)
		}
	}
	for _, ru := range t.rules {
		if q, ok, err := ru.match(r, path, rawQuery); ok || err != nil {
			return q, err
		}
	}
	return Quote{Price: t.defaultPrice}, nil
}

// match prices the request if the rule matches it. Static rules and expressions that use no
// capture only test the regexps, which does not allocate.
func (ru *rule) match(r *Request, path, rawQuery string) (Quote, bool, error) {
	if !ru.allowsMethod(r.Method) {
		return Quote{}, false, nil
	}
	// The path is tested first: it is required and the most selective.
	var pathCaps, hostCaps []int
	if ru.expr != nil && ru.expr.pathCaptures {
		if pathCaps = ru.path.FindStringSubmatchIndex(path); pathCaps == nil {
			return Quote{}, false, nil
		}
	} else if !ru.path.MatchString(path) {
		return Quote{}, false, nil
	}
	if ru.host != nil {
		if ru.expr != nil && ru.expr.hostCaptures {
			if hostCaps = ru.host.FindStringSubmatchIndex(r.Host); hostCaps == nil {
				return Quote{}, false, nil
			}
		} else if !ru.host.MatchString(r.Host) {
			return Quote{}, false, nil
		}
	}
	q, err := ru.quote(r, path, rawQuery, pathCaps, hostCaps)
	return q, true, err
}

// forced prices the request with this rule whether or not it matches (uraiden.rule).
func (ru *rule) forced(r *Request, path, rawQuery string) (Quote, error) {
	var pathCaps, hostCaps []int
	if ru.expr != nil && ru.expr.pathCaptures {
		pathCaps = ru.path.FindStringSubmatchIndex(path)
	}
	if ru.host != nil && ru.expr != nil && ru.expr.hostCaptures {
		hostCaps = ru.host.FindStringSubmatchIndex(r.Host)
	}
	return ru.quote(r, path, rawQuery, pathCaps, hostCaps)
}

func (ru *rule) quote(r *Request, path, rawQuery string, pathCaps, hostCaps []int) (Quote, error) {
	if ru.expr == nil {
		return Quote{Price: ru.price, Rule: ru.name}, nil
	}
	price, err := ru.expr.eval(&vars{
		expr:     ru.expr,
		method:   r.Method,
		host:     r.Host,
		path:     path,
		rawQuery: rawQuery,
		headers:  r.Headers,
		pathCaps: pathCaps,
		hostCaps: hostCaps,
	})
	if err != nil {
		return Quote{}, fmt.Errorf("pricing: rule %q: price_expr: %w", ru.name, err)
	}
	return Quote{Price: price, Rule: ru.name}, nil
}

func (ru *rule) allowsMethod(method string) bool {
	if len(ru.methods) == 0 {
		return true
	}
	for _, m := range ru.methods {
		// Methods are case-sensitive in HTTP, but an upstream that accepts "get" as GET
		// must not let a client dodge a GET-only price by changing case.
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

// parsePrice parses a decimal price in [0, MaxPrice]. Leading zeros are refused because
// YAML reads 0755 as octal: a price must mean the same to every reader.
func parsePrice(s string, allowPlus bool) (*big.Int, error) {
	digits := s
	if allowPlus {
		digits = strings.TrimPrefix(digits, "+")
	}
	if strings.HasPrefix(digits, "-") && isDecimal(digits[1:]) {
		return nil, fmt.Errorf("%q is negative", s)
	}
	if !isDecimal(digits) {
		return nil, fmt.Errorf("%q %w", s, errNotInteger)
	}
	if len(digits) > 1 && digits[0] == '0' {
		return nil, fmt.Errorf("%q has a leading zero", s)
	}
	price, _ := new(big.Int).SetString(digits, 10)
	if price.Cmp(MaxPrice) > 0 {
		return nil, fmt.Errorf("%s is above the maximum 2^192-1", s)
	}
	return price, nil
}

// errNotInteger is parsePrice's complaint about text that is no number at all.
var errNotInteger = errors.New("is not a decimal integer")

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
