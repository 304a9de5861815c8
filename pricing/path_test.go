package pricing

import (
	"errors"
	"slices"
	"testing"
)

func TestCanonicalPath(t *testing.T) {
	for _, c := range []struct {
		raw, want string
		others    []string
	}{
		// Already canonical: returned as is.
		{"/", "/", nil},
		{"/echofix/hello", "/echofix/hello", nil},
		{"/echofix/", "/echofix/", nil},
		{"/.well-known/x", "/.well-known/x", nil},
		{"/a/.../b", "/a/.../b", nil},
		{"/a:b@c!$&'()*+,=~", "/a:b@c!$&'()*+,=~", nil},
		// The variants of /echofix/hello.
		{"//echofix/hello", "/echofix/hello", nil},
		{"/echofix//hello", "/echofix/hello", nil},
		{"/./echofix/hello", "/echofix/hello", nil},
		{"/echofix/./hello", "/echofix/hello", nil},
		{"/x/../echofix/hello", "/echofix/hello", nil},
		{"/echofix%2Fhello", "/echofix/hello", []string{"/echofix%2Fhello"}},
		{"/echofix%2fhello", "/echofix/hello", []string{"/echofix%2Fhello"}},
		{"/echofix/hello%2F", "/echofix/hello/", []string{"/echofix/hello", "/echofix/hello%2F"}},
		// Encoded dots and unreserved characters, any case.
		{"/echofix/%2e/hello", "/echofix/hello", nil},
		{"/x/%2E%2e/echofix/hello", "/echofix/hello", nil},
		{"/x/.%2E/echofix/hello", "/echofix/hello", nil},
		{"/%65chofix/hell%6F", "/echofix/hello", nil},
		{"/a%7eb%7E", "/a~b~", nil},
		{"/a%3ab%3A", "/a:b:", nil},
		// Trailing dot segments and slashes.
		{"/echofix/hello/", "/echofix/hello/", nil},
		{"/echofix/hello//", "/echofix/hello/", nil},
		{"/echofix/hello/.", "/echofix/hello", []string{"/echofix/hello/"}},
		{"/echofix/hello/..", "/echofix", []string{"/echofix/"}},
		{"/echofix/..", "/", nil},
		{"//", "/", nil},
		{"/./", "/", nil},
		{"/.", "/", nil},
		{"/a/./b/.", "/a/b", []string{"/a/b/"}},
		{"/a/%2e", "/a", []string{"/a/"}},
		// Bytes outside pchar are encoded, upper-case.
		{"/a b", "", nil},
		{"/caf\xc3\xa9", "/caf%C3%A9", nil},
		{"/caf%c3%a9", "/caf%C3%A9", nil},
		{"/a%3fb%23c", "/a%3Fb%23c", nil},
		{"/a\"b", "/a%22b", nil},
		// Backslashes: a character to POSIX servers, a separator to Windows ones.
		{`/echofix\hello`, "/echofix%5Chello", []string{"/echofix/hello"}},
		{"/echofix%5chello", "/echofix%5Chello", []string{"/echofix/hello"}},
		{`/echofix/hello\..`, "/echofix/hello%5C..", []string{"/echofix", "/echofix/"}},
		{`/a\b%2Fc`, "/a%5Cb/c", []string{"/a%5Cb%2Fc", "/a/b/c", "/a/b%2Fc"}},
		// Semicolons: path parameters to servlet containers.
		{"/echofix;x/hello", "/echofix%3Bx/hello", []string{"/echofix/hello"}},
		{"/x/..;/echofix/hello", "/x/..%3B/echofix/hello", []string{"/echofix/hello"}},
		{"/a%3Bb", "/a%3Bb", nil},
	} {
		got, others, err := CanonicalPath(c.raw)
		if c.want == "" {
			if err == nil {
				t.Errorf("%q: %q, want an error", c.raw, got)
			}
			continue
		}
		if err != nil || got != c.want || !slices.Equal(others, c.others) {
			t.Errorf("%q: %q %q %v, want %q %q", c.raw, got, others, err, c.want, c.others)
		}
		// The canonical form is its own.
		if again, _, err := CanonicalPath(got); err != nil || again != got {
			t.Errorf("%q: canonical %q is not a fixed point: %q %v", c.raw, got, again, err)
		}
	}
}

// What no reading resolves is refused.
func TestCanonicalPathRefuses(t *testing.T) {
	for _, raw := range []string{
		"", "echofix/hello", "*", "%2Fechofix",
		"/..", "/../echofix/hello", "/echofix/../../echofix/hello", "/%2e%2e/echofix/hello", "/a/..%2F..%2Fb",
		"/echofix/hello%", "/echofix/hello%2", "/echofix/%zzhello", "/echofix/%2ghello",
		"/echofix/hello%00", "/echofix%0a/hello", "/a%7F", "/a\x00", "/a\tb", "/a b",
		"/echofix%252Fhello", "/echofix/%252e%252e/x", "/a%2541", "/100%25",
		// A double encoding whose digits are encoded too, which decoding once turns into
		// the refused form above.
		"/echofix%25%32%46hello", "/echofix%25%32Fhello", "/free/%25%32%65%25%32%65/echofix/hello",
		"/echofix/hello#x", "/x/..;/..;/echofix",
	} {
		if got, others, err := CanonicalPath(raw); err == nil {
			t.Errorf("%q: %q %q, want an error", raw, got, others)
		} else if pe := (*PathError)(nil); !errors.As(err, &pe) {
			t.Errorf("%q: %v is not a *PathError", raw, err)
		}
	}
}

// The fast path does not allocate.
func TestCanonicalPathFastPathAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _, _ = CanonicalPath("/echofix/hello-world.txt") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func BenchmarkCanonicalPath(b *testing.B) {
	for _, p := range []string{"/echofix/hello", "/x/../echofix//%68ello"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = CanonicalPath(p)
			}
		})
	}
}
