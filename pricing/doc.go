// Package pricing owns the price table: which HTTP requests cost how much, in token base
// units. It parses and validates the table file (prices.yaml), answers "what does this
// request cost" on the authorization hot path, and keeps the table current while the file
// changes underneath a running service.
//
// # The table
//
// A table is a default price and an ordered list of rules; the first rule that matches a
// request prices it, and a request no rule matches costs default_price. A price of 0 means
// free. A rule matches when all of these hold:
//
//   - methods (optional) lists the request's method, compared case-insensitively;
//   - host (optional) is an RE2 regular expression matching the whole Host (:authority) as
//     Envoy reports it, port included when the client sent one;
//   - path (required) is an RE2 regular expression matching the whole path, without the
//     query string.
//
// Both regular expressions are anchored: "/a" matches "/a" and not "/ab". The path is
// matched, and seen by price expressions, in the canonical form of [CanonicalPath]: as the
// upstream resolves it (dot segments removed, slashes merged, escapes decoded but those of
// bytes outside RFC 3986's pchar, which stay encoded in upper case, ';' as %3B), so that
// //echofix/./foo and /echofix/%66oo are /echofix/foo. [Table.Warnings] reports a priced
// rule restricted to some methods whose other methods fall to a free price.
//
// A rule's price is either static or computed per request by a CEL expression (price_expr).
// A static price, like default_price, is in token base units (an integer, or a decimal
// string for values above 2^63-1), or in whole tokens with an explicit unit: "0.005 token"
// ("tokens" is also accepted). A bare number is always base units, so a table mixes both
// safely; a bare fraction (0.005) is an error, since it is most likely a price in tokens
// with its unit left out. Prices in tokens are converted once, when the table is read, with
// the token's decimals ([Options].Token; the service reads the channel token's ERC20
// decimals() at start and keeps converting every reload with them), and only exactly: an
// amount finer than one base unit is an error, never rounded. Base units stay the wire
// format: quotes, proofs and the ledger never see tokens. Expressions and the uraiden.price
// override are in base units. The expression sees these variables:
//
//	method   string               the request method, as sent
//	host     string               the Host / :authority
//	path     string               the canonical path (see above), without the query string
//	query    map(string, string)  the query parameters, first value of each
//	headers  map(string, string)  the request headers, lower-case names as Envoy sends them
//
// and one string variable per named capture group of the rule's path and host expressions
// ("" when the group did not take part in the match). The expression must yield a
// non-negative int or uint; its evaluation cost is bounded, so a table cannot make the
// authorization path slow. Optional syntax is enabled: query.?page.orValue("1").
//
// Every price must fit a uint192, the channel contract's balance type.
//
// # Per-route overrides
//
// Envoy's ext_authz filter passes per-route context_extensions to the service. Two keys
// are honoured, so a route can be priced without a path rule:
//
//	uraiden.price  a price in base units for every request of the route; the table is not
//	               consulted. A value that is not a valid price is an error from Quote.
//	uraiden.rule   the name of a table rule that prices the route whatever its methods,
//	               host and path say. Its capture variables are filled only when its
//	               path (or host) expression happens to match, and are "" otherwise.
//	               An unknown name is an error from Quote.
//
// uraiden.price wins when both are present, since it is the more specific statement.
//
// # Errors
//
// Parse and Load report every problem in a file at once, each as a [*LoadError] naming the
// file, line, rule and key, e.g.
//
//	prices.yaml:12: rule 2 "echodyn": price_expr: ERROR: <input>:1:6: undeclared reference to 'parm'
//
// Unknown keys are errors: a misspelt key silently ignored would misprice requests.
//
// # Reloading
//
// A [Watcher] loads the file at start and reloads it whenever its directory changes, which
// also covers Kubernetes ConfigMap volumes (updated by swapping a ..data symlink). A new
// file that does not load is logged and ignored: the last good table stays in force.
package pricing
