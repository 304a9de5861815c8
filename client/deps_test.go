package client_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The client is what a sender links into its program: it speaks the protocol (rdn) and
// talks to the contracts, and must not drag in the server. A package listed here in the
// client's dependencies means some import brought the gateway's side along.
var serverSide = []string{
	"github.com/dgraph-io/badger",
	"github.com/google/cel-go",
	"github.com/envoyproxy/go-control-plane/envoy/service/auth",
	"github.com/prometheus/",
	"github.com/uraiden/uraiden/authz",
	"github.com/uraiden/uraiden/admin",
	"github.com/uraiden/uraiden/ledger",
	"github.com/uraiden/uraiden/pricing",
	"github.com/uraiden/uraiden/chain",
	"github.com/uraiden/uraiden/internal/",
	"github.com/uraiden/uraiden/cmd/",
}

func TestClientDoesNotDependOnTheServer(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/uraiden/uraiden/client").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, dep := range deps {
		for _, bad := range serverSide {
			if dep == strings.TrimSuffix(bad, "/") || strings.HasPrefix(dep, strings.TrimSuffix(bad, "/")+"/") {
				t.Errorf("the client depends on %s", dep)
			}
		}
	}
}
