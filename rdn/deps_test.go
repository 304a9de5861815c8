package rdn

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Both ends import rdn, so it imports nothing of theirs: nothing of the project at all.
func TestImportsNothingFromTheProject(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	const self = "github.com/uraiden/uraiden/rdn"
	out, err := exec.Command(goTool, "list", "-deps", self).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if !strings.Contains(string(out), self) {
		t.Fatalf("go list -deps did not list rdn itself: %q", deps)
	}
	for _, dep := range deps {
		if dep != self && strings.HasPrefix(dep, "github.com/uraiden/uraiden/") {
			t.Errorf("rdn depends on %s", dep)
		}
	}
}
