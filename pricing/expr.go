package pricing

import (
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
)

// costLimit bounds one evaluation of a price expression. It is far above what a pricing
// formula needs and far below what would show up in request latency; an expression over it
// fails the request instead of stalling the authorization path.
const costLimit = 10000

// The variables every expression sees. Capture groups may not reuse these names.
const (
	varMethod  = "method"
	varHost    = "host"
	varPath    = "path"
	varQuery   = "query"
	varHeaders = "headers"
)

// baseEnv declares the built-in variables. It is built once; each rule extends it with its
// own capture variables.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	stringMap := cel.MapType(cel.StringType, cel.StringType)
	return cel.NewEnv(
		cel.Variable(varMethod, cel.StringType),
		cel.Variable(varHost, cel.StringType),
		cel.Variable(varPath, cel.StringType),
		cel.Variable(varQuery, stringMap),
		cel.Variable(varHeaders, stringMap),
		cel.OptionalTypes(),
	)
})

// celReserved are words the CEL parser refuses as identifiers: a capture so named could
// never be referenced.
var celReserved = map[string]bool{
	"as": true, "break": true, "const": true, "continue": true, "else": true, "false": true,
	"for": true, "function": true, "if": true, "import": true, "in": true, "let": true,
	"loop": true, "package": true, "namespace": true, "null": true, "return": true,
	"true": true, "var": true, "void": true, "while": true,
}

var celIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// priceExpr is a compiled price_expr.
type priceExpr struct {
	prog cel.Program
	// captures maps each capture variable to where its value is found.
	captures map[string]capture
	// pathCaptures and hostCaptures say whether the expression reads any capture of the path
	// or host expression; when it does not, matching skips submatch extraction.
	pathCaptures, hostCaptures bool
}

// capture locates a named group's value in a FindStringSubmatchIndex result.
type capture struct {
	host  bool
	group int
}

// compileExpr compiles src for a rule whose path and host expressions are given (host may
// be nil). The problems it returns are each one line of the rule's price_expr report.
func compileExpr(src string, path, host *regexp.Regexp) (*priceExpr, error) {
	base, err := baseEnv()
	if err != nil {
		return nil, err
	}
	pe := &priceExpr{captures: map[string]capture{}}
	var errs []error
	var opts []cel.EnvOption
	declare := func(re *regexp.Regexp, isHost bool) {
		where := "path"
		if isHost {
			where = "host"
		}
		for group, name := range re.SubexpNames() {
			if name == "" {
				continue
			}
			switch {
			case name == varMethod || name == varHost || name == varPath || name == varQuery || name == varHeaders:
				errs = append(errs, fmt.Errorf("%s capture %q clashes with the built-in variable of that name", where, name))
				continue
			case celReserved[name] || !celIdent.MatchString(name):
				errs = append(errs, fmt.Errorf("%s capture %q is not a valid CEL identifier", where, name))
				continue
			}
			if _, dup := pe.captures[name]; dup {
				errs = append(errs, fmt.Errorf("%s capture %q is defined more than once", where, name))
				continue
			}
			pe.captures[name] = capture{host: isHost, group: group}
			opts = append(opts, cel.Variable(name, cel.StringType))
		}
	}
	declare(path, false)
	if host != nil {
		declare(host, true)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	env, err := base.Extend(opts...)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	// dyn is let through (it is checked at evaluation); anything else can never be a price.
	out := ast.OutputType()
	if !out.IsExactType(cel.IntType) && !out.IsExactType(cel.UintType) && !out.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("evaluates to %s, want int or uint", out)
	}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if c, ok := pe.captures[ref.Name]; ok {
			if c.host {
				pe.hostCaptures = true
			} else {
				pe.pathCaptures = true
			}
		}
	}
	pe.prog, err = env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(costLimit))
	if err != nil {
		return nil, err
	}
	return pe, nil
}

func (pe *priceExpr) eval(v *vars) (*big.Int, error) {
	out, _, err := pe.prog.Eval(v)
	if err != nil {
		return nil, err
	}
	switch n := out.(type) {
	case types.Int:
		if n < 0 {
			return nil, fmt.Errorf("evaluated to %d, a negative price", int64(n))
		}
		return big.NewInt(int64(n)), nil
	case types.Uint:
		return new(big.Int).SetUint64(uint64(n)), nil
	default:
		return nil, fmt.Errorf("evaluated to %v of type %s, want int or uint", out, out.Type())
	}
}

// vars is the activation of one evaluation. It resolves variables on demand, so the query
// string is parsed only if the expression reads it.
type vars struct {
	expr               *priceExpr
	method, host, path string
	rawQuery           string
	headers            map[string]string
	pathCaps, hostCaps []int
	query              map[string]string
	queryParsed        bool
}

var _ interpreter.Activation = (*vars)(nil)

// noStrings is the query of requests without one, shared so that they allocate nothing.
// CEL only reads it.
var noStrings = map[string]string{}

// ResolveName implements interpreter.Activation.
func (v *vars) ResolveName(name string) (any, bool) {
	switch name {
	case varMethod:
		return v.method, true
	case varHost:
		return v.host, true
	case varPath:
		return v.path, true
	case varHeaders:
		return v.headers, true
	case varQuery:
		if !v.queryParsed {
			v.query, v.queryParsed = parseQuery(v.rawQuery), true
		}
		return v.query, true
	}
	c, ok := v.expr.captures[name]
	if !ok {
		return nil, false
	}
	caps, s := v.pathCaps, v.path
	if c.host {
		caps, s = v.hostCaps, v.host
	}
	if 2*c.group+1 >= len(caps) || caps[2*c.group] < 0 {
		// The rule was forced by uraiden.rule without matching, or the group is optional.
		return "", true
	}
	return s[caps[2*c.group]:caps[2*c.group+1]], true
}

// Parent implements interpreter.Activation.
func (v *vars) Parent() interpreter.Activation { return nil }

// parseQuery decodes a query string keeping the first value of each parameter. Malformed
// pairs are skipped rather than failing the request: the client controls the query, and
// an expression that needs a parameter will see it missing.
func parseQuery(raw string) map[string]string {
	if raw == "" {
		return noStrings
	}
	q := make(map[string]string, strings.Count(raw, "&")+1)
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			continue
		}
		if _, seen := q[k]; !seen {
			q[k] = val
		}
	}
	return q
}
