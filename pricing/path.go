package pricing

import (
	"strconv"
	"strings"
)

// PathError is a request path that cannot be priced because servers resolve it in ways
// that cannot be told apart from here; it is refused (400), never priced.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return "path " + quoteTrunc(e.Path) + ": " + e.Reason }

func quoteTrunc(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}

// CanonicalPath returns the path a price table matches for a request path (the request
// target without its query string, as sent): the path as the upstream will resolve it.
// A proxy in front (Envoy without normalize_path, Caddy) may forward /x/../echofix/hello,
// //echofix/hello or /echofix%2Fhello as they came; a file server, or any server that
// cleans paths, then serves /echofix/hello, so these must be priced as /echofix/hello.
//
// The canonical form:
//
//   - every percent-encoded byte is decoded, and the bytes that are not unreserved
//     characters, sub-delimiters (but ';'), ':' or '@' (RFC 3986 pchar) are encoded
//     again, with upper-case hex: %7e and ~ are ~, %3a and : are :, é and %c3%a9 are
//     %C3%A9, ; and %3b are %3B;
//   - repeated slashes are merged: //a///b is /a/b;
//   - dot segments are removed as RFC 3986 5.2.4 says, after decoding, so /a/%2e%2e/b
//     is /b; but a final dot segment leaves no trailing slash (/a/b/.. is /a), as
//     Python's posixpath.normpath and Go's path.Clean resolve it;
//   - %2F (encoded slash) separates segments, as file servers (Python's http.server, Go's
//     http.FileServer) and Envoy's UNESCAPE_* and Istio's DECODE_AND_MERGE_SLASHES
//     treat it.
//
// A path has other readings when it holds something servers disagree on; those are
// returned in others, each in canonical form, for the caller to price too and refuse the
// request if any is priced differently:
//
//   - %2F: a separator to file servers, a character of its segment to routers (Go's
//     ServeMux, Envoy's default KEEP_UNCHANGED); the second reading keeps it as %2F;
//   - \ and %5C: a separator on Windows servers (IIS), a character of the name on POSIX
//     ones; canonically a character (%5C), the other reading a separator;
//   - ; (raw): Java servlet containers strip ";parameters" from each segment before
//     resolving it (/x/..;/y is /y to Tomcat); canonically a character (%3B);
//   - a final dot segment: RFC 3986 (and so Envoy's normalize_path) leaves a trailing
//     slash, /a/b/.. is /a/ there; a final %2F (or \, %5C where it separates): Python's
//     http.server looks for a trailing slash before decoding, and serves /a%2F as /a.
//
// A path that no reading can resolve is a *PathError:
//
//   - empty, or not starting with '/' (the caller accepts "*" for OPTIONS itself);
//   - a '%' not followed by two hex digits;
//   - a control character or space, raw or encoded (%00 to %1F, %7F);
//   - %25, an encoded '%': a server that decodes twice reads it with what follows as an
//     escape (%252F and %25%32%46 are a slash to it), so the canonical form holds no '%'
//     but its own escapes and is a fixed point;
//   - a raw '#': Python's http.server ends the path there, others do not;
//   - a ".." that climbs above the root: servers disagree on where it leads.
//
// A path that needs none of this (no '%', '\', ';', '#', "//", dot segment or byte
// outside the canonical set) is returned as it is, without allocating.
func CanonicalPath(raw string) (canonical string, others []string, err error) {
	if isCanonical(raw) {
		return raw, nil, nil
	}
	if raw == "" || raw[0] != '/' {
		return "", nil, &PathError{Path: raw, Reason: "does not start with /"}
	}
	var escSlash, backslash, semicolon bool
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '\\':
			backslash = true
		case ';':
			semicolon = true
		case '%':
			if i+2 < len(raw) && raw[i+1] == '2' && (raw[i+2] == 'F' || raw[i+2] == 'f') {
				escSlash = true
			}
			if i+2 < len(raw) && raw[i+1] == '5' && (raw[i+2] == 'C' || raw[i+2] == 'c') {
				backslash = true
			}
		}
	}
	// Every combination of the readings the path admits, the primary one first; each with
	// an unsure end (see resolve) is read the other way too.
	add := func(r reading) (bool, error) {
		s, unsure, err := resolve(raw, r)
		switch {
		case err != nil:
			return false, err
		case r == (reading{escapedSlashSeparates: true}):
			canonical = s
		case s != canonical && !contains(others, s):
			others = append(others, s)
		}
		return unsure, nil
	}
	for mask := 0; mask < 8; mask++ {
		r := reading{escapedSlashSeparates: true}
		if mask&1 != 0 {
			if !escSlash {
				continue
			}
			r.escapedSlashSeparates = false
		}
		if mask&2 != 0 {
			if !backslash {
				continue
			}
			r.backslashSeparates = true
		}
		if mask&4 != 0 {
			if !semicolon {
				continue
			}
			r.stripParameters = true
		}
		unsure, err := add(r)
		if err != nil {
			return "", nil, err
		}
		if unsure {
			r.flipTrailingSlash = true
			if _, err := add(r); err != nil {
				return "", nil, err
			}
		}
	}
	return canonical, others, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// reading is one way servers resolve a path.
type reading struct {
	escapedSlashSeparates bool // %2F is a '/'
	backslashSeparates    bool // '\' and %5C are a '/'
	stripParameters       bool // ";..." up to the end of a segment is dropped (servlets)
	// flipTrailingSlash reads an unsure end (see resolve) the other way: with a trailing
	// slash after a final dot segment (RFC 3986), without one after a final encoded slash
	// or backslash (Python's http.server looks for the trailing slash before decoding).
	flipTrailingSlash bool
}

// plain are the bytes the canonical form writes as they are: RFC 3986 pchar (unreserved,
// sub-delims, ':', '@') but ';', plus '/' the separator.
var plain = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,=:@/" {
		t[c] = true
	}
	return t
}()

// isCanonical is CanonicalPath's fast path: a path of plain bytes only, starting with '/',
// without an empty or dot segment (but a trailing slash), is its own canonical form.
func isCanonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !plain[c] {
			return false
		}
		if c != '/' || i+1 == len(p) {
			continue
		}
		switch p[i+1] {
		case '/':
			return false
		case '.':
			// "/." or "/.." ending the path or followed by '/'.
			rest := p[i+2:]
			if rest == "" || rest[0] == '/' || rest == "." || strings.HasPrefix(rest, "./") {
				return false
			}
		}
	}
	return true
}

// resolve reads raw one way and writes it in canonical form. unsure reports an end that
// servers resolve with or without a trailing slash: a final dot segment, or a final
// separator that is not a raw '/'.
func resolve(raw string, r reading) (canonical string, unsure bool, err error) {
	var (
		segs   []string // resolved segments, decoded
		seg    []byte   // the segment being read, decoded
		skip   bool     // inside ";parameters" being stripped
		rawSep = true   // the last separator was a raw '/'
	)
	trailing := false
	end := func(last bool) error {
		s := string(seg)
		seg, skip = seg[:0], false
		switch s {
		case "":
			// An empty segment: a merged slash, or the trailing one.
		case ".":
		case "..":
			if len(segs) == 0 {
				return &PathError{Path: raw, Reason: `".." climbs above the root`}
			}
			segs = segs[:len(segs)-1]
		default:
			segs = append(segs, s)
			if last {
				trailing = false
			}
			return nil
		}
		if last {
			unsure = s != "" || !rawSep
			trailing = (s == "") != (unsure && r.flipTrailingSlash)
		}
		return nil
	}
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		separator := false
		switch {
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "", false, &PathError{Path: raw, Reason: "a % not followed by two hex digits"}
			}
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
			switch {
			case c < 0x20 || c == 0x7f:
				return "", false, &PathError{Path: raw, Reason: "an encoded control character"}
			case c == '%':
				// Whatever follows, written plain or itself encoded (%25%32%46): a server that
				// decodes twice reads an escape there. One decoding leaves no '%' to decode again.
				return "", false, &PathError{Path: raw, Reason: "an encoded % (%25), which servers that decode twice read as an escape"}
			case c == '/':
				separator = r.escapedSlashSeparates
			case c == '\\':
				separator = r.backslashSeparates
			}
		case c <= 0x20 || c == 0x7f:
			return "", false, &PathError{Path: raw, Reason: "a control character or space"}
		case c == '#':
			return "", false, &PathError{Path: raw, Reason: "a raw #, where some servers end the path"}
		case c == '/':
			separator = true
		case c == '\\':
			separator = r.backslashSeparates
		case c == ';' && r.stripParameters:
			skip = true
			continue
		}
		if separator {
			if err := end(false); err != nil {
				return "", false, err
			}
			rawSep = c == '/' && raw[i] == '/'
			continue
		}
		if !skip {
			seg = append(seg, c)
		}
	}
	if err := end(true); err != nil {
		return "", false, err
	}
	var b strings.Builder
	b.Grow(len(raw) + 8)
	for _, s := range segs {
		b.WriteByte('/')
		for i := 0; i < len(s); i++ {
			if c := s[i]; plain[c] && c != '/' {
				b.WriteByte(c)
			} else {
				b.WriteByte('%')
				b.WriteByte(upperHex[c>>4])
				b.WriteByte(upperHex[c&15])
			}
		}
	}
	if len(segs) == 0 || trailing {
		b.WriteByte('/')
	}
	return b.String(), unsure, nil
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
