package paywall

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/uraiden/uraiden/internal/dev/devtools"
)

// TestCommittedBundleIsFresh rebuilds the assets with the pinned esbuild and viem and
// compares them with dist/: the served script must be the one src/ describes.
func TestCommittedBundleIsFresh(t *testing.T) {
	if _, err := devtools.Esbuild(); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("node", "build.mjs", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node build.mjs: %v\n%s", err, msg)
	}
	for _, name := range []string{"paywall.js", "paywall.css"} {
		built, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := dist.ReadFile("dist/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, committed) {
			t.Errorf("dist/%s is stale: run `npm run build:paywall` and commit the result", name)
		}
	}
}
