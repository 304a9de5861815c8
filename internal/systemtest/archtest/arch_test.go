package archtest

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/uraiden/uraiden"

// pkg is a package of the module and every package it depends on, tests excluded.
type pkg struct {
	path, name string
	deps       []string
}

// modulePackages lists the module's packages with 'go list'.
func modulePackages(t *testing.T) map[string]pkg {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the packages: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-f", "{{.ImportPath}}\t{{.Name}}\t{{join .Deps \" \"}}", module+"/...").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) != 3 {
			t.Fatalf("go list: unexpected line %q", line)
		}
		pkgs[f[0]] = pkg{path: f[0], name: f[1], deps: strings.Fields(f[2])}
	}
	return pkgs
}

// library reports whether a package is part of the module's library: not a command, and not
// internal to the module or to one of its packages.
func library(p pkg) bool {
	rel := strings.TrimPrefix(p.path, module+"/")
	return p.name != "main" && rel != "internal" && !strings.HasPrefix(rel, "internal/") &&
		!strings.Contains(rel, "/internal/") && !strings.HasSuffix(rel, "/internal") && !strings.HasPrefix(rel, "cmd/")
}

// The library packages depend on nothing in the module's internal/: what they need of it
// would be out of reach of the library's users.
func TestLibraryImportsNoInternal(t *testing.T) {
	pkgs := modulePackages(t)
	for _, want := range []string{"authz", "pricing", "ledger", "chain", "admin", "client", "keys"} {
		if p, ok := pkgs[module+"/"+want]; !ok || !library(p) {
			t.Fatalf("%s is not listed as a library package: the test would check nothing", want)
		}
	}
	for _, path := range slices.Sorted(maps.Keys(pkgs)) {
		p := pkgs[path]
		if !library(p) {
			continue
		}
		for _, d := range p.deps {
			if strings.HasPrefix(d, module+"/internal/") {
				t.Errorf("library package %s depends on %s", p.path, d)
			}
		}
	}
}

// The ledger sits below the packages that use it: it depends on none of chain, authz,
// admin, client or pricing (nor their subpackages), only on the protocol package.
func TestLedgerDependsOnNothingAbove(t *testing.T) {
	pkgs := modulePackages(t)
	l, ok := pkgs[module+"/ledger"]
	if !ok {
		t.Fatal("no ledger package")
	}
	above := []string{"chain", "authz", "admin", "client", "pricing", "cmd", "internal"}
	for _, d := range l.deps {
		if !strings.HasPrefix(d, module+"/") {
			continue
		}
		rel := strings.TrimPrefix(d, module+"/")
		if slices.ContainsFunc(above, func(a string) bool { return rel == a || strings.HasPrefix(rel, a+"/") }) {
			t.Errorf("ledger depends on %s, a package above it", d)
		}
	}
}
