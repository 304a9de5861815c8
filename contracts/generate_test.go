package contracts_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/uraiden/uraiden/contracts/internal/build"
)

// The committed artifacts and bindings must be exactly what `go generate ./contracts/...`
// produces from the sources with the pinned compiler.
func TestCommittedArtifactsAreFresh(t *testing.T) {
	out := t.TempDir()
	if err := build.Generate("src", out); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, pattern := range []string{"bindings.go", "build/*.json", "build/*/*.json"} {
		m, err := filepath.Glob(filepath.Join(out, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 6 {
		t.Fatalf("fresh build produced only %v", files)
	}
	for _, fresh := range files {
		rel, _ := filepath.Rel(out, fresh)
		want, _ := os.ReadFile(fresh)
		got, err := os.ReadFile(rel)
		if err != nil {
			t.Errorf("%s is not committed: run go generate ./contracts/...", rel)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh build: run go generate ./contracts/...", rel)
		}
	}
}
